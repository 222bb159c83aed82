package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// The crash test re-runs the test binary as a child that writes to the store
// until it is killed (as os/exec's tests do). These variables tell the child
// where the store is and where to start counting.
const (
	crashPathEnv  = "CUIVRE_STORE_CRASH_PATH"
	crashStartEnv = "CUIVRE_STORE_CRASH_START"
)

// TestCrashChild is the child of TestKill9; run on its own it skips.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		t.Skip("the child process of TestKill9")
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := start; ; i++ {
		// Epochs 1, 2, 3: later epochs are fenced against earlier ones.
		for e := uint64(1); e <= uint64(1+i%3); e++ {
			if err := s.PutLease(testLease(i, e)); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			fmt.Printf("lease %d %d\n", i, e)
		}
		if err := s.PutReceipt(testReceipt(i, uint64(1+i%3))); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("receipt %d\n", i)
	}
}

// TestKill9 is issue 4's criterion: kill -9 loses nothing committed. A child
// writes leases and receipts and prints a line after each write returns; the
// parent kills it with SIGKILL while it is still writing, reopens the file, and
// checks that every write the child reported is there, intact, and that the
// file is consistent (bbolt's Tx.Check). Three rounds on the same file, so each
// child also starts from a file the last one was killed over.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "cuivre.db")
	type lease struct {
		i int
		e uint64
	}
	committed := map[lease]bool{}
	receipts := map[int]bool{}
	next := 0
	for round := range 3 {
		// The child's own timeout bounds an orphan's life if the parent dies.
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
		cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashStartEnv+"="+strconv.Itoa(next))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() }) // if a check below fails first
		sc := bufio.NewScanner(out)
		reported := 0
		// Kill after a number of writes that changes each round, so the
		// kill lands at different points of a write.
		killAt := 40 + 37*round
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "lease":
				i, _ := strconv.Atoi(f[1])
				e, _ := strconv.ParseUint(f[2], 10, 64)
				committed[lease{i, e}] = true
				next = max(next, i+1)
			case len(f) == 2 && f[0] == "receipt":
				i, _ := strconv.Atoi(f[1])
				receipts[i] = true
			case len(f) > 0 && f[0] == "error":
				t.Fatalf("round %d: child: %s", round, sc.Text())
			default:
				continue // the test framework's own lines
			}
			if reported++; reported == killAt && !killed {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !killed || !errors.As(err, &ee) || ee.ExitCode() != -1 || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("round %d: the child ended with %v (killed by us: %t), want killed by SIGKILL", round, err, killed)
		}

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		err = s.db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				t.Errorf("round %d: bbolt check: %v", round, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for l := range committed {
			got, err := s.Lease(testID(l.i), l.e)
			if err != nil {
				t.Fatalf("round %d: lease %d epoch %d was reported committed: %v", round, l.i, l.e, err)
			}
			if diff := cmp.Diff(testLease(l.i, l.e), got); diff != "" {
				t.Fatalf("round %d: lease %d epoch %d (-want +got):\n%s", round, l.i, l.e, diff)
			}
		}
		for i := range receipts {
			got, err := s.Receipt(testID(i), uint64(1+i%3))
			if err != nil {
				t.Fatalf("round %d: receipt %d was reported committed: %v", round, i, err)
			}
			if diff := cmp.Diff(testReceipt(i, uint64(1+i%3)), got); diff != "" {
				t.Fatalf("round %d: receipt %d (-want +got):\n%s", round, i, diff)
			}
		}
		// Whatever else is there (a write that committed but was not
		// reported before the kill) is whole too.
		all, err := s.Leases(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) < len(committed) || len(all) > len(committed)+1 {
			t.Errorf("round %d: %d leases stored, %d reported: want the reported ones and at most the one in flight", round, len(all), len(committed))
		}
		inFlight := 0
		for _, l := range all {
			if !committed[lease{idIndex(t, l.ID), l.Epoch}] {
				inFlight++
				i := idIndex(t, l.ID)
				if diff := cmp.Diff(testLease(i, l.Epoch), l); diff != "" {
					t.Errorf("round %d: unreported lease %d epoch %d is not whole (-want +got):\n%s", round, i, l.Epoch, diff)
				}
				committed[lease{i, l.Epoch}] = true
				next = max(next, i+1)
			}
		}
		t.Logf("round %d: killed after %d reported writes; %d leases stored, %d of them committed but not yet reported", round, reported, len(all), inFlight)
		// A receipt committed but not reported: note it, the next child must
		// not write it again as another receipt.
		rs, err := s.Receipts()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			i := idIndex(t, r.LeaseID)
			if diff := cmp.Diff(testReceipt(i, r.Epoch), r); diff != "" {
				t.Errorf("round %d: receipt %d is not whole (-want +got):\n%s", round, i, diff)
			}
			receipts[i] = true
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Start the next child past any lease the dead one had begun.
		for committed[lease{next, 1}] {
			next++
		}
	}
}

// idIndex finds the i of testID(i) among those the crash test can have written.
func idIndex(t *testing.T, id string) int {
	t.Helper()
	if idIndexes == nil {
		idIndexes = make(map[string]int)
		for i := range 100_000 {
			idIndexes[testID(i)] = i
		}
	}
	i, ok := idIndexes[id]
	if !ok {
		t.Fatalf("lease %x is none the test wrote", id)
	}
	return i
}

var idIndexes map[string]int
