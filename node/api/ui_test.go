package api_test

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// TestUIInChromium reads a provider's leases through the API, then opens the
// operator's page in a real headless Chromium:
// a provider's page shows the lease a job started on it, with its output;
// it shows what the provider earned from a job that ended, as totals and a
// chart; the customer's page shows the job and, clicked, who won its slot; a wrong
// token gets the login form and says why. Screenshots of both pages are kept
// as the test's artifacts (go test -artifacts).
func TestUIInChromium(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := oneProvider(t, ctx)
	prov := d.Providers[0]

	// A job run to its end, so that the provider has earned something,
	// then one that runs until stopped.
	done := submit(t, d.Requester, exectest.Write("done\n", "", 0))
	if v, err := d.Requester.Wait(ctx, done); err != nil || v.State != "succeeded" {
		t.Fatalf("the first job: %s, %v", v.State, err)
	}
	const line = "hello from the lease"
	key := submitLoop(t, d.Requester, line)
	defer d.Requester.Stop(key)
	if err := devnet.WaitFor(ctx, time.Minute, func() bool {
		ls := prov.Leases()
		return len(ls) == 1 && strings.Contains(ls[0].Stdout, line)
	}); err != nil {
		t.Fatalf("the job's lease never ran with its output on the provider: %v", err)
	}

	provAPI, err := prov.ServeAPI("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer provAPI.Close(ctx)
	reqAPI, err := d.Requester.ServeAPI("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer reqAPI.Close(ctx)

	// What the page reads of leases, through the API with its token.
	var leases []api.LeaseView
	if err := api.NewClient(provAPI.Addr(), provAPI.Token()).Get("/v1/leases", &leases); err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].State != "running" || leases[0].Since == nil || leases[0].Job == "" || leases[0].Requester != d.Requester.ID().String() {
		t.Fatalf("GET /v1/leases = %+v, want the job's lease, running, from %s", leases, d.Requester.ID())
	}

	browser := findChromium()
	if browser == "" {
		t.Skip("no Chromium here (chromium, chromium-browser or google-chrome): install Debian's chromium to run the page's test")
	}

	// Nothing beyond loopback: the browser in a network namespace of its own
	// where the test may make one (isolated); and, wherever it runs, no name
	// resolved (the page is on an IP literal) and no component fetched.
	alloc, at := isolated(t, ctx, browser, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.NoSandbox, chromedp.WindowSize(1280, 1600),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true)), provAPI.Addr(), reqAPI.Addr())
	page, cancelPage := chromedp.NewContext(alloc)
	defer cancelPage()
	shots := t.ArtifactDir()

	// text reads an element's text once the steps before it have run.
	text := func(sel string) string {
		s, err := chromedp.Run(page, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	screenshot := func(name string) {
		png, err := chromedp.Run(page, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		keep(t, shots, name, png)
	}

	if err := chromedp.Do(page,
		chromedp.Navigate(at(provAPI.Addr())+"/ui/#token="+provAPI.Token()),
		chromedp.WaitVisible(`tr.lease`),
		chromedp.WaitVisible(`#earnings-chart svg`),
	); err != nil {
		t.Fatalf("the provider's page: %v", err)
	}
	screenshot("provider.png")
	if nodeID, leases := text(`#node-id`), text(`#lease-rows`); nodeID != prov.ID().String() || !strings.Contains(leases, line) || !strings.Contains(leases, "running") {
		t.Errorf("the provider's page shows node %q and leases %q; want %s and a running lease with %q", nodeID, leases, prov.ID(), line)
	}
	if earned := text(`#earnings-totals`); !strings.Contains(earned, "EUR billed in 1 receipt") {
		t.Errorf("the provider's earnings read %q, want the first job's receipt", earned)
	}

	if err := chromedp.Do(page,
		chromedp.Navigate(at(reqAPI.Addr())+"/ui/#token="+reqAPI.Token()),
		chromedp.WaitVisible(`tr.job`),
		chromedp.Click(`tr.job`),
		chromedp.WaitVisible(`#job-detail table`),
	); err != nil {
		t.Fatalf("the customer's page: %v", err)
	}
	screenshot("customer.png")
	if id, detail := prov.ID().String(), text(`#job-detail`); !strings.Contains(detail, id[len(id)-8:]) || !strings.Contains(detail, "won with") {
		t.Errorf("the job's detail %q: want its slot on …%s and why it won", detail, id[len(id)-8:])
	}

	if err := chromedp.Do(page,
		chromedp.Navigate(at(reqAPI.Addr())+"/ui/#token=00"),
		chromedp.Reload(), // a new fragment alone does not load the page again
		chromedp.WaitVisible(`#login`),
	); err != nil {
		t.Fatalf("a wrong token: %v", err)
	}
	if why := text(`#login-error`); !strings.Contains(why, "refused") {
		t.Errorf("a wrong token says %q, want that it was refused", why)
	}
}

// oneProvider starts a devnet of one provider and its requester, closed
// when the test ends.
func oneProvider(t *testing.T, ctx context.Context) *devnet.Devnet {
	t.Helper()
	d, err := devnet.Start(ctx, devnet.Options{N: 1, Dir: t.TempDir(), CacheDir: exectest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// submitLoop has n place a job that prints line and then runs until stopped.
func submitLoop(t *testing.T, n *node.Node, line string) string {
	t.Helper()
	return submit(t, n, exectest.WriteLoop(line+"\n"))
}

// submit has n place a job of module, half a vCPU for up to ten minutes.
func submit(t *testing.T, n *node.Node, module []byte) string {
	t.Helper()
	spec, err := jobspec.ParseJobSpec([]byte("version: 1\nname: ui-test\ntask:\n  module: loop.wasm\n  resources: {cpu: 500m, memory: 64Mi, timeout: 10m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := spec.Job(func(string) (cid.Cid, error) { return wire.SumCID(module), nil })
	if err != nil {
		t.Fatal(err)
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	sj, err := record.SealJob(n.Identity(), j)
	if err != nil {
		t.Fatal(err)
	}
	key, err := n.Submit(sj.Envelope, module, "ui-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func keep(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", filepath.Join(dir, name))
}
