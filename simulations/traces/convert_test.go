package traces

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the expected outputs in testdata")

// convert runs Convert into a string; chunk 3 makes every sort of more than
// three records spill to disk and merge, as a multi-gigabyte input does.
func convert(t *testing.T, inputs []string, o Options) (string, *Stats, error) {
	t.Helper()
	if o.Chunk == 0 {
		o.Chunk = 3
	}
	if o.TempDir == "" {
		o.TempDir = t.TempDir()
	}
	var out bytes.Buffer
	st, err := Convert(&out, inputs, o)
	if o.TempDir != "" {
		if left, _ := os.ReadDir(o.TempDir); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
	return out.String(), st, err
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// tarGz writes a .tar.gz of the files, as Alibaba ships its tables, with a
// directory and a macOS resource fork beside them.
func tarGz(t *testing.T, dir, name string, files ...string) string {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "trace/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(f)
		tw.WriteHeader(&tar.Header{Name: "trace/._" + base, Mode: 0o644, Size: 4})
		tw.Write([]byte{0, 5, 22, 7})
		tw.WriteHeader(&tar.Header{Name: "trace/" + base, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	out := filepath.Join(dir, name)
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func td(names ...string) []string {
	for i, n := range names {
		names[i] = filepath.Join("testdata", n)
	}
	return names
}

// gzipped writes a gzip copy of a file into dir.
func gzipped(t *testing.T, dir, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	out := filepath.Join(dir, filepath.Base(path)+".gz")
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConvertGoogle converts instance events (JSON lines, out of order, one
// instance's history split over two files, one of them gzip) and checks
// each rule on the jobs written: testdata/google2019.want.csv is, shifted
// by the first arrival (1 s of trace time),
//
//	1001/0  submitted 1 s, scheduled 2 s, FINISH 62 s      at 0, run 60 s
//	1001/1  submitted, never scheduled                     dropped
//	1001/2  scheduled 3.5 s, KILL 33.5 s                   at 2, run 30 s
//	1001/3  5-15 s, EVICT, SUBMIT, 20-40 s                 at 3, run 10 + 20 s
//	1001/4  KILL while pending                             dropped
//	1002/0  submitted at time 0 (before the trace)         dropped
//	1002/1  scheduled 9 s, no end: runs to the trace's end at 7, run 111 s
//	1002/2  10-11 s, FAIL, SUBMIT, 12 s to FINISH after the end
//	                                                       at 9, run 1 + 108 s
//	1002/3  request raised by UPDATE_PENDING to 2 vCPUs    at 19, 2000m
//	1002/4  FINISH then SUBMIT again: two jobs             at 29 and 49
//	1003/0  no SUBMIT in the inputs                        dropped
//	1004/0  0 CPU requested: raised to 1m                  at 59
//	2001/0  an alloc instance                              dropped
func TestConvertGoogle(t *testing.T) {
	dir := t.TempDir()
	inputs := []string{filepath.Join("testdata", "google2019-part0.json"), gzipped(t, dir, filepath.Join("testdata", "google2019-part1.json"))}
	got, st, err := convert(t, inputs, Options{Format: Google2019})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "google2019.want.csv", got)
	wantDropped := map[string]int64{
		gDropAlloc:    2,
		gDropOrphan:   2,
		gDropBefore:   1,
		gDropUnplaced: 2,
	}
	if diff := cmp.Diff(wantDropped, st.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if st.Records != 43 || st.Jobs != 9 || st.Raised != 1 || st.First != time.Second || st.End != 120*time.Second {
		t.Errorf("stats: %d records, %d jobs, %d raised, first %s, end %s; want 43, 9, 1, 1s, 2m0s", st.Records, st.Jobs, st.Raised, st.First, st.End)
	}

	// The order of the files, and CSV rather than JSON, change nothing.
	again, _, err := convert(t, []string{inputs[1], inputs[0]}, Options{Format: Google2019})
	if err != nil || again != got {
		t.Errorf("files swapped: %v\n%s", err, again)
	}
	csv, _, err := convert(t, td("google2019.csv"), Options{Format: Google2019})
	if err != nil || csv != got {
		t.Errorf("from CSV: %v\n%s", err, csv)
	}
	var sum strings.Builder
	st.Summary(&sum)
	for _, want := range []string{"read 43 events from 2 file(s)", "wrote 9 jobs", "dropped 2: instances never scheduled", "1.0 NCU = 64 vCPUs"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

// TestConvertAlibaba converts batch_task.csv (a task of one instance is a
// job) and batch_instance.csv (an instance's run is a job).
func TestConvertAlibaba(t *testing.T) {
	got, st, err := convert(t, td("alibaba2018-batch_task.csv"), Options{Format: Alibaba2018})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "alibaba2018-batch_task.want.csv", got)
	// As downloaded: a tar.gz of the table.
	archive := tarGz(t, t.TempDir(), "batch_task.tar.gz", td("alibaba2018-batch_task.csv")...)
	if fromTar, st, err := convert(t, []string{archive}, Options{Format: Alibaba2018}); err != nil || fromTar != got || st.Files != 1 {
		t.Errorf("from a tar.gz: %v, %d files\n%s", err, st.Files, fromTar)
	}
	badTar := tarGz(t, t.TempDir(), "bad.tar.gz", td("alibaba2018-bad.csv")...)
	if _, _, err := convert(t, []string{badTar}, Options{Format: Alibaba2018}); err == nil || !strings.Contains(err.Error(), "bad.tar.gz:trace/alibaba2018-bad.csv:3: start_time") {
		t.Errorf("a bad line in a tar.gz: %v, want it named by archive, member and line", err)
	}
	want := map[string]int64{
		aDropMany:      1,
		aDropNone:      1,
		aDropNoStart:   1,
		aDropNoEnd:     1,
		aDropNoRequest: 1,
		aDropInvalid:   1,
		`rows of status "Waiting" (kept: Terminated, Failed, Running)`:   1,
		`rows of status "Cancelled" (kept: Terminated, Failed, Running)`: 1,
	}
	if diff := cmp.Diff(want, st.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if st.Jobs != 4 || st.End != 620*time.Second || st.First != 100*time.Second {
		t.Errorf("stats: %d jobs, end %s, first %s; want 4, 10m20s, 1m40s", st.Jobs, st.End, st.First)
	}

	got, st, err = convert(t, td("alibaba2018-batch_instance.csv"), Options{Format: Alibaba2018, MemoryScale: 128})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "alibaba2018-batch_instance.want.csv", got)
	want = map[string]int64{
		aDropNoUsage: 1,
		`rows of status "Ready" (kept: Terminated, Failed, Running)`: 1,
	}
	if diff := cmp.Diff(want, st.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

// TestConvertOptions checks the window, the sample, the limit, the shift,
// the speedup and the size limits on the Google sample's nine jobs.
func TestConvertOptions(t *testing.T) {
	inputs := td("google2019-part0.json", "google2019-part1.json")
	rows := func(out string) []string {
		var r []string
		for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "at,") {
				r = append(r, l)
			}
		}
		return r
	}
	ats := func(out string) string {
		var a []string
		for _, r := range rows(out) {
			a = append(a, strings.Split(r, ",")[0])
		}
		return strings.Join(a, " ")
	}
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"all", Options{}, "0 2 3 7 9 19 29 49 59"},
		{"window", Options{Start: 5 * time.Second, Duration: 25 * time.Second}, "0 2 12"},
		{"window kept in trace time", Options{Start: 5 * time.Second, Duration: 25 * time.Second, KeepTime: true}, "8 10 20"},
		{"limit", Options{Limit: 4}, "0 2 3 7"},
		{"speedup", Options{Speedup: 4}, "0 0.5 0.75 1.75 2.25 4.75 7.25 12.25 14.75"},
		{"max cpu", Options{MaxCPUMillis: 1000}, "0 2 3 7 9 29 49 59"},
		{"max memory", Options{MaxMemoryBytes: 512 << 20}, "0 57"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Format = Google2019
			out, _, err := convert(t, inputs, c.o)
			if err != nil {
				t.Fatal(err)
			}
			if got := ats(out); got != c.want {
				t.Errorf("arrivals %q, want %q\n%s", got, c.want, out)
			}
		})
	}

	// A sample is a subset, the same whatever the order of the files, and
	// another seed draws another.
	half := Options{Format: Google2019, Sample: 0.5, Seed: 7, KeepTime: true}
	a, st, err := convert(t, inputs, half)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := convert(t, []string{inputs[1], inputs[0]}, half)
	if a != b {
		t.Errorf("the sample depends on the order of the files:\n%s\n%s", a, b)
	}
	all, _, _ := convert(t, inputs, Options{Format: Google2019, KeepTime: true})
	for _, r := range rows(a) {
		if !strings.Contains(all, "\n"+r+"\n") {
			t.Errorf("sampled row %q is not in the whole trace", r)
		}
	}
	if n := int64(len(rows(a))); n+st.Dropped[dropSample] != 9 || n == 0 || n == 9 {
		t.Errorf("sample kept %d and left out %d of 9", n, st.Dropped[dropSample])
	}
	seeds := map[string]bool{}
	for seed := range uint64(8) {
		out, _, _ := convert(t, inputs, Options{Format: Google2019, Sample: 0.5, Seed: seed, KeepTime: true})
		seeds[out] = true
	}
	if len(seeds) < 2 {
		t.Errorf("eight seeds drew the same sample")
	}
}

// TestConvertBadInput checks that mistakes are reported with the file and
// line, that nothing is written then, and that --skip-bad converts the rest.
func TestConvertBadInput(t *testing.T) {
	for _, c := range []struct {
		name   string
		format string
		input  string
		want   []string
		jobs   int64
	}{
		{"google", Google2019, "google2019-bad.json", []string{
			"testdata/google2019-bad.json:2: bad JSON",
			`testdata/google2019-bad.json:3: type "42": want 0 to 10`,
			"testdata/google2019-bad.json:4: missing instance_index",
			`testdata/google2019-bad.json:5: time "-5"`,
			`testdata/google2019-bad.json:6: resource_request.cpus "lots"`,
		}, 1},
		{"alibaba", Alibaba2018, "alibaba2018-bad.csv", []string{
			"testdata/alibaba2018-bad.csv:2: 6 fields: batch_task.csv has 9, batch_instance.csv 14",
			`testdata/alibaba2018-bad.csv:3: start_time "soon": want a number`,
			"testdata/alibaba2018-bad.csv:4: a row of batch_instance.csv (14 fields) among rows of batch_task.csv",
			"testdata/alibaba2018-bad.csv:5: extraneous or missing \" in quoted-field",
		}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := convert(t, td(c.input), Options{Format: c.format})
			var bad *BadInputError
			if !errors.As(err, &bad) {
				t.Fatalf("error %v, want a *BadInputError", err)
			}
			if out != "" {
				t.Errorf("wrote despite the errors:\n%s", out)
			}
			if bad.Total != int64(len(c.want)) {
				t.Errorf("%d errors, want %d:\n%v", bad.Total, len(c.want), err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain\n%s", err, w)
				}
			}
			out, st, err := convert(t, td(c.input), Options{Format: c.format, SkipBad: true})
			if err != nil || st.Jobs != c.jobs || st.Bad != int64(len(c.want)) || len(st.Warnings) != len(c.want) {
				t.Errorf("--skip-bad: %v, %d jobs, %d bad; want %d jobs, %d bad\n%s", err, st.Jobs, st.Bad, c.jobs, len(c.want), out)
			}
		})
	}

	for _, c := range []struct {
		name  string
		input string
		o     Options
		want  string
	}{
		{"missing file", "nothing.json", Options{Format: Google2019}, "testdata/nothing.json: open "},
		{"directory", "", Options{Format: Google2019}, "testdata: a directory"},
		{"not instance events", "alibaba2018-batch_task.csv", Options{Format: Google2019}, "alibaba2018-batch_task.csv:1: not instance_events"},
		{"truncated gzip", "truncated.gz", Options{Format: Google2019}, "truncated.gz:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			input := filepath.Join("testdata", c.input)
			if c.input == "truncated.gz" {
				gz := gzipped(t, t.TempDir(), filepath.Join("testdata", "google2019-part0.json"))
				data, _ := os.ReadFile(gz)
				input = filepath.Join(t.TempDir(), "truncated.gz")
				os.WriteFile(input, data[:len(data)/2], 0o644)
			}
			_, _, err := convert(t, []string{input}, c.o)
			var bad *BadInputError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want a *BadInputError containing %q", err, c.want)
			}
			if c.input == "truncated.gz" && (bad.Total != 1 || !strings.Contains(err.Error(), "cannot read on: unexpected EOF (truncated or corrupt gzip?)")) {
				t.Errorf("truncated gzip: %v, want only the read error, not the half line", err)
			}
		})
	}

	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no format"},
		{Options{Format: "borg"}, `unknown format "borg"`},
		{Options{Format: Alibaba2018, CPUScale: 2}, "--cpu-scale: alibaba2018 gives CPU in cores"},
		{Options{Format: Google2019, MemoryScale: -1}, "--memory-scale -1"},
		{Options{Format: Google2019, Sample: 1.5}, "--sample 1.5"},
		{Options{Format: Google2019, Limit: -1}, "--limit -1"},
		{Options{Format: Google2019, Speedup: -2}, "--speedup -2"},
		{Options{Format: Google2019, Start: -time.Second}, "--start -1s"},
	} {
		_, _, err := convert(t, td("google2019-part0.json"), c.o)
		var u *UsageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want a *UsageError containing %q", c.o, err, c.want)
		}
	}

	if _, _, err := convert(t, td("google2019-part0.json"), Options{Format: Google2019, Start: time.Hour}); !errors.Is(err, ErrNoJobs) {
		t.Errorf("empty window: error %v, want ErrNoJobs", err)
	}
}

// TestConvertSorter checks the external sort against the in-memory one on
// enough records for two rounds of merging.
func TestConvertSorter(t *testing.T) {
	s := newSorter(jobCodec, 7, t.TempDir())
	defer s.close()
	const n = 7*fanIn*2 + 5
	for i := range n {
		j := job{at: int64(mix(uint64(i)) % 1000), seq: uint64(i)}
		if err := s.add(j); err != nil {
			t.Fatal(err)
		}
	}
	var prev *job
	count := 0
	err := s.each(func(j *job) error {
		if prev != nil && jobCodec.cmp(prev, j) >= 0 {
			t.Fatalf("out of order: %+v then %+v", *prev, *j)
		}
		p := *j
		prev = &p
		count++
		return nil
	})
	if err != nil || count != n {
		t.Fatalf("%d records, %v; want %d", count, err, n)
	}
}
