package config

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The files of a data directory that this package owns.
const (
	// IdentityFile holds the node's libp2p Ed25519 private key, as
	// crypto.MarshalPrivateKey writes it, mode 0600.
	IdentityFile = "identity.key"
	// ConfigFile is the node's YAML configuration.
	ConfigFile = "config.yaml"
	// BackupSuffix is appended to a file Init replaces with force.
	BackupSuffix = ".bak"
	// DirEnv names the data directory, when set (DefaultDir).
	DirEnv = "CUIVRE_DIR"
)

// ErrIdentityExists is returned by Init, wrapped, when the data directory
// already holds an identity and force is false.
var ErrIdentityExists = errors.New("identity already exists")

//go:embed template.yaml
var template []byte

// Template returns the config.yaml that Init writes: every setting at its
// default, each with a one-line comment. Load reads it back to Default. The
// caller owns the slice.
func Template() []byte { return bytes.Clone(template) }

// roleLine is the Template's line that sets the role, at its default.
const roleLine = "\nrole: " + RoleProvider + "\n"

// TemplateFor returns the Template of a node of role: the same file, its
// role line set to role. Load reads it back to Default with that role. It
// refuses a role that is not one of Roles.
func TemplateFor(role string) ([]byte, error) {
	if !slices.Contains(Roles(), role) {
		return nil, fmt.Errorf("role %q: use %s", role, roleList())
	}
	if bytes.Count(template, []byte(roleLine)) != 1 {
		return nil, errors.New("the config template has no single role line") // a broken build, which a test catches
	}
	return bytes.Replace(template, []byte(roleLine), []byte("\nrole: "+role+"\n"), 1), nil
}

// InitResult is what Init did.
type InitResult struct {
	// Dir is the data directory.
	Dir string
	// PeerID is the new identity's peer ID.
	PeerID peer.ID
	// IdentityPath is the path of identity.key.
	IdentityPath string
	// IdentityBackup is where the identity it replaced (with force) was
	// kept, or "".
	IdentityBackup string
	// ConfigPath is the path of config.yaml.
	ConfigPath string
	// ConfigWritten is false when an existing config.yaml was kept.
	ConfigWritten bool
	// ConfigBackup is where the config it replaced (with force) was kept,
	// or "".
	ConfigBackup string
}

// DefaultDir returns the data directory: $CUIVRE_DIR if set, else ~/.cuivre.
func DefaultDir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: set %s or pass --data-dir (%w)", DirEnv, err)
	}
	return filepath.Join(home, ".cuivre"), nil
}

// Init prepares the data directory dir for a new node, as `cuivre init` does:
// it creates dir (mode 0700) if needed, generates an Ed25519 identity into
// identity.key (mode 0600) and writes the commented Template as config.yaml.
//
// An existing identity is never replaced without force: Init then fails with
// ErrIdentityExists before writing anything, since a new key is a new peer ID
// that the federation does not know. An existing config.yaml is kept without
// force (so an operator may write it first, from a profile in
// examples/nodes); with force both are replaced and the old files kept with
// BackupSuffix. Every file is written atomically (temporary file, fsync,
// rename), so a crash leaves the old file or the new one, never a torn one.
func Init(dir string, force bool) (InitResult, error) {
	return InitRole(dir, force, RoleProvider)
}

// InitRole is Init for a node of role: the config.yaml it writes is
// TemplateFor(role). A role that is not one of Roles is refused before
// anything is written.
func InitRole(dir string, force bool, role string) (InitResult, error) {
	cfg, err := TemplateFor(role)
	if err != nil {
		return InitResult{}, fmt.Errorf("init: %w", err)
	}
	if dir == "" {
		return InitResult{}, errors.New("init: no data directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("init: %w", err)
	}
	res := InitResult{
		Dir:          dir,
		IdentityPath: filepath.Join(dir, IdentityFile),
		ConfigPath:   filepath.Join(dir, ConfigFile),
	}
	keyExists, err := exists(res.IdentityPath)
	if err != nil {
		return InitResult{}, fmt.Errorf("init: %w", err)
	}
	if keyExists && !force {
		return InitResult{}, identityExists(dir, res.IdentityPath)
	}
	cfgExists, err := exists(res.ConfigPath)
	if err != nil {
		return InitResult{}, fmt.Errorf("init: %w", err)
	}

	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return InitResult{}, fmt.Errorf("init: generate identity: %w", err)
	}
	if res.PeerID, err = peer.IDFromPrivateKey(sk); err != nil {
		return InitResult{}, fmt.Errorf("init: %w", err)
	}
	key, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return InitResult{}, fmt.Errorf("init: %w", err)
	}
	if keyExists {
		res.IdentityBackup = res.IdentityPath + BackupSuffix
		if err := backup(res.IdentityPath, res.IdentityBackup, 0o600); err != nil {
			return InitResult{}, fmt.Errorf("init: keep the old identity: %w", err)
		}
	}
	if err := writeFileAtomic(res.IdentityPath, key, 0o600, keyExists); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return InitResult{}, identityExists(dir, res.IdentityPath) // another init won the race
		}
		return InitResult{}, fmt.Errorf("init: write identity: %w", err)
	}

	if cfgExists && !force {
		return res, nil
	}
	if cfgExists {
		res.ConfigBackup = res.ConfigPath + BackupSuffix
		if err := backup(res.ConfigPath, res.ConfigBackup, 0o644); err != nil {
			return res, fmt.Errorf("init: keep the old config: %w", err)
		}
	}
	if err := writeFileAtomic(res.ConfigPath, cfg, 0o644, cfgExists); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return res, nil // written meanwhile by someone else: theirs stands
		}
		return res, fmt.Errorf("init: write config: %w", err)
	}
	res.ConfigWritten = true
	return res, nil
}

func identityExists(dir, path string) error {
	who := ""
	if sk, err := LoadIdentity(dir); err == nil {
		if id, err := peer.IDFromPrivateKey(sk); err == nil {
			who = fmt.Sprintf(" (peer ID %s)", id)
		}
	}
	return fmt.Errorf("%s already holds this node's identity%s: a new key would be a new peer ID that the federation does not know; to replace it anyway, run again with --force (the old key is kept as %s%s): %w",
		path, who, IdentityFile, BackupSuffix, ErrIdentityExists)
}

// LoadIdentity reads the node's private key from dir/identity.key. It refuses
// a key file that group or others may read or write (on systems with Unix
// permissions), since whoever reads it can impersonate the node, and a key
// that is not Ed25519, the only type cuivre signs with.
func LoadIdentity(dir string) (crypto.PrivKey, error) {
	p := filepath.Join(dir, IdentityFile)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no identity in %s: create one with `cuivre init`: %w", dir, err)
		}
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("identity %s is not a regular file", p)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("identity %s has mode %#o, so group or others may read it, and whoever reads it can impersonate this node: run `chmod 600 %s`", p, perm, p)
	}
	const maxKeyFile = 4 << 10 // an Ed25519 key is 68 bytes
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("identity %s is over %d bytes: not a libp2p private key", p, maxKeyFile)
	}
	sk, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("identity %s is not a libp2p private key: %w", p, err)
	}
	if sk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("identity %s is a %s key: cuivre identities are Ed25519 (create one with `cuivre init --force`)", p, sk.Type())
	}
	return sk, nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// backup copies the file at from to to, atomically, replacing to.
func backup(from, to string, perm fs.FileMode) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return writeFileAtomic(to, data, perm, true)
}

// writeFileAtomic writes data to path with mode perm through a temporary file
// in the same directory, synced before it takes the name, so readers see the
// old file or the whole new one. Without replace it fails with fs.ErrExist if
// path exists, even when another process creates it meanwhile.
func writeFileAtomic(path string, data []byte, perm fs.FileMode, replace bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = createLink(tmp, path)
	}
	if err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// createLink gives the file at tmp the name path unless path exists, and
// removes tmp.
func createLink(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		os.Remove(tmp)
		return err
	}
	// No hard links on this file system: check, then rename. Racy, but only
	// against another init in the same directory at the same moment.
	if ok, err := exists(path); err != nil || ok {
		os.Remove(tmp)
		if ok {
			return fs.ErrExist
		}
		return err
	}
	return os.Rename(tmp, path)
}

// syncDir makes a rename in dir durable, where the system supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every system can sync a directory
		d.Close()
	}
}

// roleList writes Roles for people: "provider, requester or retailer".
func roleList() string {
	r := Roles()
	return strings.Join(r[:len(r)-1], ", ") + " or " + r[len(r)-1]
}
