package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/api"
)

// TestJobEvents follows a job through GET /v1/jobs/{cid}/events: the node
// pushes a line at once, one when the run starts with its output, and a last
// one, done, when the job is stopped; the output comes once, in order.
func TestJobEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := oneProvider(t, ctx)
	srv, err := d.Requester.ServeAPI("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	c := api.NewClient(srv.Addr(), srv.Token())

	if err := c.Follow(ctx, "bafkreinosuchjob", func(api.JobEvent) error { return nil }); err == nil {
		t.Error("following a job the node does not have: no error")
	}

	const line = "hello from the stream"
	key := submitLoop(t, d.Requester, line)
	var events []api.JobEvent
	var stdout string
	stopped := false
	err = c.Follow(ctx, key, func(ev api.JobEvent) error {
		events = append(events, ev)
		stdout += ev.Stdout
		if !stopped && stdout == line+"\n" && len(ev.Job.Slots) == 1 && ev.Job.Slots[0].State == "running" {
			stopped = d.Requester.Stop(key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("follow: %v (after %d events)", err, len(events))
	}
	sawRun := false
	for _, ev := range events {
		sawRun = sawRun || len(ev.Job.Slots) == 1 && ev.Job.Slots[0].Run == "running"
	}
	if !sawRun {
		t.Errorf("no event says what the provider's run does (run: running)")
	}
	last := events[len(events)-1]
	if !stopped || !last.Done || last.Job.State != "cancelled" || stdout != line+"\n" {
		t.Fatalf("%d events, stopped %v, the last %+v, output %q; want the running job's output once, then done and cancelled", len(events), stopped, last, stdout)
	}
	for _, ev := range events[:len(events)-1] {
		if ev.Done {
			t.Errorf("an event before the last says done: %+v", ev)
		}
	}

	// A client that goes ends the stream, not the job.
	key = submitLoop(t, d.Requester, line)
	defer d.Requester.Stop(key)
	fctx, fcancel := context.WithCancel(ctx)
	err = c.Follow(fctx, key, func(api.JobEvent) error { fcancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("follow cancelled by its client: %v, want context.Canceled", err)
	}
	if v, _ := d.Requester.Job(key); v.State == "cancelled" {
		t.Errorf("the job was cancelled with the stream that followed it")
	}
}
