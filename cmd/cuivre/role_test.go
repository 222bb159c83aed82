package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/exec/exectest"
)

// startDevnet starts a devnet of n providers in this process, and returns it
// and a bootstrap multiaddr of its first provider.
func startDevnet(t *testing.T, n int) (*devnet.Devnet, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Options{N: n, Dir: t.TempDir(), CacheDir: exectest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	boot, err := d.BootstrapAddrs()
	if err != nil {
		t.Fatal(err)
	}
	return d, boot[0]
}

// helloSpec writes the hello module and a job spec running it into a new
// directory, and returns the spec's path.
func helloSpec(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.wasm"), exectest.Module(t, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "hello.yaml")
	writeFile(t, spec, "version: 1\nname: hi\ntask:\n  module: hello.wasm\n  args: [--name, cli]\n  resources: {cpu: 500m, memory: 64Mi}\n")
	return spec
}

// TestRequesterDaemon: `cuivre init --role requester` writes a requester's
// config, which `cuivre daemon` runs as a node that only buys: `cuivre node
// status` says so, and `cuivre job run` through it places a job on a
// provider of a devnet. An unknown role is refused, naming the ones allowed.
func TestRequesterDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	out, err := cuivre(t, "init", "--role", "seller", "--data-dir", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `--role "seller": use provider or requester`) {
		t.Fatalf("init --role seller: %v, output %q; want it refused with the roles allowed", err, out)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Errorf("init --role seller made %s", bad)
	}

	_, boot := startDevnet(t, 2)
	dir := filepath.Join(t.TempDir(), "node")
	if out, err := cuivre(t, "init", "--role", "requester", "--data-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("init --role requester: %v\n%s", err, out)
	}
	if c, err := config.Load(filepath.Join(dir, config.ConfigFile), nil, nil); err != nil || c.Role != config.RoleRequester {
		t.Fatalf("the config init wrote: role %q, %v", c.Role, err)
	}
	d := startDaemon(t, dir, boot)
	deadline := time.Now().Add(time.Minute)
	for d.status(t).DHTPeers == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the requester daemon found no DHT peer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, err := cuivre(t, "node", "status", "-o", "json", "--data-dir", dir).Output()
	if err != nil || !strings.Contains(string(status), `"role": "requester"`) || !strings.Contains(string(status), `"cpu_millis": 0`) {
		t.Fatalf("node status: %v\n%s", err, status)
	}
	out, err = cuivre(t, "job", "run", "--data-dir", dir, helloSpec(t)).Output()
	if err != nil || string(out) != "hello, cli! (0 lines on stdin)\n" {
		t.Fatalf("job run through the requester daemon: %v, stdout %q", err, out)
	}
}

// TestJobRunBootstrap: `cuivre job run --bootstrap` with no daemon starts a
// requester node of its own for the command, places the job on a devnet
// (its module and inputs fetched from that node, its output downloaded),
// has every receipt countersigned and taken, and leaves no temporary dir
// behind. It signs with a key of its own, or the data dir's identity when
// there is one; it refuses a data dir whose daemon runs, --detach, and a
// bootstrap address that names no peer.
func TestJobRunBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dn, boot := startDevnet(t, 2)
	tmp := t.TempDir()
	run := func(dataDir string, args ...string) (stdout, stderr string, err error) {
		t.Helper()
		cmd := cuivre(t, append([]string{"job", "run", "--bootstrap", boot}, args...)...)
		cmd.Env = append(cmd.Env, "TMPDIR="+tmp, config.DirEnv+"="+dataDir)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Errorf("job run left %v in its temporary dir", left)
		}
		return o.String(), e.String(), err
	}

	// No data dir: a key for this run.
	hello := helloSpec(t)
	none := filepath.Join(t.TempDir(), "none")
	stdout, stderr, err := run(none, hello)
	if err != nil || stdout != "hello, cli! (0 lines on stdin)\n" || !strings.Contains(stderr, "a key for this run only") {
		t.Fatalf("job run --bootstrap: %v, stdout %q, stderr:\n%s", err, stdout, stderr)
	}

	// A job over local data, its output downloaded, signed with the
	// identity of a data dir whose daemon is not running.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "corpus"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "corpus", "a.txt"), "le cuivre et le courant\n")
	wordfreq, err := filepath.Abs("../../examples/wasm/wordfreq.wasm")
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "words.yaml")
	writeFile(t, spec, "version: 1\nname: words\ntask:\n  module: "+wordfreq+"\n  args: [corpus]\n  inputs:\n    - {path: corpus, source: ./corpus}\n"+
		"  outputs: [words.txt]\n  resources: {cpu: 500m, memory: 64Mi, scratch: 1Mi}\n")
	home := initDir(t)
	key, err := config.LoadIdentity(home)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	got := filepath.Join(dir, "words")
	_, stderr, err = run(home, "--download", got, spec)
	if err != nil || !strings.Contains(stderr, "requester "+id.String()) {
		t.Fatalf("job run --bootstrap --download with the identity of %s (%s): %v\n%s", home, id, err, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(got, "words.txt")); err != nil || string(b) != "2 le\n1 courant\n1 cuivre\n1 et\n" {
		t.Fatalf("words.txt downloaded: %q (%v)", b, err)
	}
	// Both runs' receipts were countersigned before their nodes stopped.
	receipts := 0
	for _, p := range dn.Providers {
		st := p.Status()
		if !reflect.DeepEqual(st.Earnings, st.Countersigned) {
			t.Errorf("provider %s billed %v, of which countersigned %v", p.ID(), st.Earnings, st.Countersigned)
		}
		receipts += len(st.Earnings)
	}
	if receipts == 0 {
		t.Error("no provider billed anything")
	}

	// Refused: a data dir whose daemon runs, --detach, an address with no peer.
	startDaemon(t, home, "")
	if _, stderr, err := run(home, hello); err == nil || !strings.Contains(stderr, "a daemon runs from "+home) {
		t.Errorf("job run --bootstrap beside a running daemon: %v\n%s", err, stderr)
	}
	if _, stderr, err := run(none, "--detach", hello); err == nil || !strings.Contains(stderr, "--detach needs a daemon") {
		t.Errorf("job run --bootstrap --detach: %v\n%s", err, stderr)
	}
	if _, stderr, err := run(none, "--bootstrap", "/ip4/127.0.0.1/udp/1/quic-v1", hello); err == nil || !strings.Contains(stderr, `--bootstrap "/ip4/127.0.0.1/udp/1/quic-v1"`) {
		t.Errorf("job run --bootstrap with no peer ID: %v\n%s", err, stderr)
	}
}
