package config

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	res, err := Init(dir, false)
	if err != nil {
		t.Fatalf("Init() = %v", err)
	}
	want := InitResult{
		Dir:           dir,
		PeerID:        res.PeerID,
		IdentityPath:  filepath.Join(dir, "identity.key"),
		ConfigPath:    filepath.Join(dir, "config.yaml"),
		ConfigWritten: true,
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Init() (-want +got):\n%s", diff)
	}
	if runtime.GOOS != "windows" {
		if m := mode(t, dir); m != 0o700 {
			t.Errorf("data dir mode %#o, want 0700", m)
		}
		if m := mode(t, res.IdentityPath); m != 0o600 {
			t.Errorf("identity.key mode %#o, want 0600", m)
		}
	}
	sk, err := LoadIdentity(dir)
	if err != nil {
		t.Fatalf("LoadIdentity() = %v", err)
	}
	if id, _ := peer.IDFromPrivateKey(sk); id != res.PeerID {
		t.Errorf("identity.key is peer %s, Init said %s", id, res.PeerID)
	}
	if sk.Type() != crypto.Ed25519 {
		t.Errorf("identity is %s, want Ed25519", sk.Type())
	}
	if got := read(t, res.ConfigPath); !bytes.Equal(got, Template()) {
		t.Error("config.yaml is not the template")
	}
	if c, err := Load(res.ConfigPath, nil, nil); err != nil || !cmp.Equal(c, Default()) {
		t.Errorf("Load(config.yaml) = %v, want the defaults", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestInitRefusesToReplaceAnIdentity(t *testing.T) {
	dir := t.TempDir()
	first, err := Init(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	key := read(t, first.IdentityPath)
	os.WriteFile(first.ConfigPath, []byte("log: {level: debug}\n"), 0o644)

	_, err = Init(dir, false)
	if !errors.Is(err, ErrIdentityExists) {
		t.Fatalf("second Init() = %v, want ErrIdentityExists", err)
	}
	for _, want := range []string{"--force", first.PeerID.String(), first.IdentityPath} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !bytes.Equal(read(t, first.IdentityPath), key) {
		t.Error("the identity changed")
	}
	if got := string(read(t, first.ConfigPath)); got != "log: {level: debug}\n" {
		t.Errorf("the config changed: %q", got)
	}
}

func TestInitKeepsAnOperatorsConfig(t *testing.T) {
	dir := t.TempDir()
	const mine = "labels: {region: fr-par}\n"
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Init(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.ConfigWritten || res.ConfigBackup != "" {
		t.Errorf("Init() = %+v, want the config kept", res)
	}
	if got := string(read(t, res.ConfigPath)); got != mine {
		t.Errorf("config.yaml = %q, want the operator's", got)
	}
}

func TestInitForce(t *testing.T) {
	dir := t.TempDir()
	first, err := Init(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := read(t, first.IdentityPath)
	const edited = "log: {level: debug}\n"
	os.WriteFile(first.ConfigPath, []byte(edited), 0o644)

	second, err := Init(dir, true)
	if err != nil {
		t.Fatalf("Init(force) = %v", err)
	}
	if second.PeerID == first.PeerID {
		t.Error("Init(force) kept the peer ID")
	}
	if second.IdentityBackup != first.IdentityPath+".bak" || second.ConfigBackup != first.ConfigPath+".bak" || !second.ConfigWritten {
		t.Errorf("Init(force) = %+v", second)
	}
	if !bytes.Equal(read(t, second.IdentityBackup), oldKey) {
		t.Error("identity.key.bak is not the old key")
	}
	if runtime.GOOS != "windows" && mode(t, second.IdentityBackup) != 0o600 {
		t.Errorf("identity.key.bak mode %#o, want 0600", mode(t, second.IdentityBackup))
	}
	if got := string(read(t, second.ConfigBackup)); got != edited {
		t.Errorf("config.yaml.bak = %q, want the edited config", got)
	}
	if !bytes.Equal(read(t, second.ConfigPath), Template()) {
		t.Error("config.yaml is not the template")
	}
}

func TestLoadIdentity(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	sk, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	ed, _ := crypto.MarshalPrivateKey(sk)
	ecdsa, _, _ := crypto.GenerateECDSAKeyPair(rand.Reader)
	ec, _ := crypto.MarshalPrivateKey(ecdsa)
	tests := []struct {
		name string
		data []byte
		mode fs.FileMode
		want string // a part of the error, or "" for success
	}{
		{"0600", ed, 0o600, ""},
		{"0400", ed, 0o400, ""},
		{"0644", ed, 0o644, "has mode 0644, so group or others may read it, and whoever reads it can impersonate this node: run `chmod 600 "},
		{"0640", ed, 0o640, "has mode 0640"},
		{"0602", ed, 0o602, "has mode 0602"},
		{"garbage", []byte("not a key"), 0o600, "is not a libp2p private key"},
		{"ECDSA", ec, 0o600, "is a ECDSA key: cuivre identities are Ed25519"},
		{"huge", make([]byte, 1<<20), 0o600, "is over 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, IdentityFile)
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := LoadIdentity(dir)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("LoadIdentity() = %v", err)
			case tt.want == "" && !got.Equals(sk):
				t.Error("LoadIdentity() returned another key")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("LoadIdentity() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := LoadIdentity(t.TempDir())
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "cuivre init") {
			t.Errorf("LoadIdentity(empty dir) = %v, want ErrNotExist and a hint", err)
		}
	})
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(DirEnv, "/srv/cuivre")
	if d, err := DefaultDir(); err != nil || d != "/srv/cuivre" {
		t.Errorf("DefaultDir() with CUIVRE_DIR = %q, %v", d, err)
	}
	t.Setenv(DirEnv, "")
	t.Setenv("HOME", "/home/op")
	if runtime.GOOS != "windows" && runtime.GOOS != "plan9" {
		if d, err := DefaultDir(); err != nil || d != "/home/op/.cuivre" {
			t.Errorf("DefaultDir() = %q, %v, want /home/op/.cuivre", d, err)
		}
	}
}

func TestWriteFileAtomicWithoutReplace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := writeFileAtomic(p, []byte("one"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("two"), 0o600, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write = %v, want ErrExist", err)
	}
	if got := string(read(t, p)); got != "one" {
		t.Errorf("file = %q, want the first write", got)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
