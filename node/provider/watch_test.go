package provider_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// watchEvents follows a lease to its end and returns every event of the
// stream, in order.
func watchEvents(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, l placement) []*pb.WatchEvent {
	t.Helper()
	var evs []*pb.WatchEvent
	_, err := requester.Watch(context.Background(), f.Requester.Peer, prov.ID, &pb.WatchRequest{LeaseId: l.leaseID, Epoch: l.epoch},
		func(ev *pb.WatchEvent) { evs = append(evs, ev) })
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return evs
}

// checkStream checks one watch stream against SPEC 6.3 and returns its
// final Status's seq and the stdout it carried: a Status first; seq
// strictly increasing; a Status with the final state, then only log chunks,
// then one Result of that state, last.
func checkStream(t *testing.T, what string, evs []*pb.WatchEvent) (finalSeq uint64, stdout string) {
	t.Helper()
	var b strings.Builder
	for i, ev := range evs {
		switch x := ev.Event.(type) {
		case *pb.WatchEvent_Log:
			if x.Log.Stream == pb.LogStream_LOG_STREAM_STDOUT {
				b.Write(x.Log.Data)
			}
		case *pb.WatchEvent_Result:
			if i != len(evs)-1 {
				t.Fatalf("%s: events after the Result: %v", what, evs[i+1:])
			}
		}
	}
	if len(evs) == 0 || evs[0].GetStatus() == nil {
		t.Fatalf("%s: the first event is not a Status: %v", what, evs)
	}
	var last uint64
	for i, ev := range evs {
		if st := ev.GetStatus(); st != nil {
			if i > 0 && st.Seq <= last {
				t.Fatalf("%s: event %d: Status seq %d after %d: not strictly increasing", what, i, st.Seq, last)
			}
			last = st.Seq
		}
	}
	res := evs[len(evs)-1].GetResult()
	if res == nil {
		t.Fatalf("%s: the stream does not end with a Result: %v", what, evs[len(evs)-1])
	}
	k := len(evs) - 2
	for k >= 0 && evs[k].GetLog() != nil {
		k--
	}
	if k < 0 || evs[k].GetStatus() == nil || evs[k].GetStatus().State != res.State || !protocol.Final(res.State) {
		t.Fatalf("%s: no final Status (%s) before the last logs and the Result: %v", what, res.State, evs)
	}
	return evs[k].GetStatus().Seq, b.String()
}

// TestWatchOrder: the statuses of a lease epoch, heartbeats included, have
// strictly increasing seq; the end is a final Status, the remaining logs,
// then the Result; a watch opened after the end gets the final Status at
// once, the logs, then the Result, and once the run is forgotten, the final
// Status and the Result from the store, with the same seq.
func TestWatchOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		prov.Hold()
		l := lease(t, f, prov, exectest.Write("bonjour\n", "", 0), 100*time.Millisecond)
		done := make(chan []*pb.WatchEvent)
		go func() { done <- watchEvents(t, f, prov, l) }()
		time.Sleep(450 * time.Millisecond) // virtual: four heartbeats while held
		prov.Release()
		evs := <-done
		beats := 0
		for _, ev := range evs {
			if ev.GetStatus().GetState() == pb.LeaseState_LEASE_STATE_ACCEPTED {
				beats++
			}
		}
		if beats < 4 {
			t.Fatalf("%d statuses while held 450 ms at a 100 ms heartbeat: %v", beats, evs)
		}
		seq, stdout := checkStream(t, "live", evs)
		if stdout != "bonjour\n" {
			t.Fatalf("live: stdout %q", stdout)
		}

		again := watchEvents(t, f, prov, l)
		seq2, stdout := checkStream(t, "after the end", again)
		if stdout != "bonjour\n" || seq2 != seq {
			t.Fatalf("after the end: stdout %q, final seq %d, was %d", stdout, seq2, seq)
		}

		f.Settle(time.Hour) // the run is forgotten: the store answers
		stored := watchEvents(t, f, prov, l)
		seq3, _ := checkStream(t, "from the store", stored)
		if len(stored) != 2 || seq3 != seq {
			t.Fatalf("from the store: %d events, final seq %d, was %d: %v", len(stored), seq3, seq, stored)
		}
	})
}

// TestWatchAfterRestart: a lease that died with its provider's process is
// reported, on the next watch, by a final Status then the Result, and that
// Status's seq is above every one the dead process sent.
func TestWatchAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		prov.Hold()
		l := lease(t, f, prov, exectest.Empty(), 100*time.Millisecond)
		var before uint64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			requester.Watch(ctx, f.Requester.Peer, prov.ID, &pb.WatchRequest{LeaseId: l.leaseID, Epoch: l.epoch}, func(ev *pb.WatchEvent) {
				if st := ev.GetStatus(); st != nil {
					before = max(before, st.Seq)
				}
			})
		}()
		time.Sleep(250 * time.Millisecond)
		cancel()
		<-done
		f.Net.Crash(prov.ID)
		prov.Store.Close()
		prov.Data.Close()
		time.Sleep(time.Second) // the process is down a while
		prov.Restart()
		evs := watchEvents(t, f, prov, l)
		seq, _ := checkStream(t, "after the restart", evs)
		if evs[0].GetStatus().State != pb.LeaseState_LEASE_STATE_FAILED || seq <= before {
			t.Fatalf("after the restart: final Status %v, seq before the crash %d", evs[0].GetStatus(), before)
		}
	})
}
