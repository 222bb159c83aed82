package simulations

import (
	"bufio"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The file names a run writes. They are part of the researcher-facing
// contract (docs, notebooks), so they live in one place.
const (
	jobsCSV       = "jobs.csv"
	placementsCSV = "placements.csv"
	providersCSV  = "providers.csv"
	classesCSV    = "classes.csv"
	timeseriesCSV = "timeseries.csv"
	lossesCSV     = "losses.csv"
	manifestJSON  = "manifest.json"
)

// WriteRun writes the tidy CSVs of one result into dir, creating it if
// needed: jobs.csv, placements.csv, providers.csv, classes.csv,
// timeseries.csv and losses.csv. Each has a header row of snake_case columns matching the
// fields of the record it holds, then one row per record. Durations are in
// seconds with millisecond precision ("12.345"), money and ratios have six
// decimals, and a time that never came (a job never placed or not ended,
// recorded as -1) is an empty cell. A job's wait is there whether it was
// placed or not: a job never placed waited until its deadline (or the end
// of the run, if sooner), and its censored column is true
// (JobRecord.CensoredWait).
//
// WriteRun only reads r.
func WriteRun(dir string, r *Result) error {
	if r == nil {
		return errors.New("write run: nil result")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	files := []struct {
		name string
		fill func(*csv.Writer) error
	}{
		{jobsCSV, func(w *csv.Writer) error { return writeJobs(w, r.Jobs, r.SimTime) }},
		{placementsCSV, func(w *csv.Writer) error { return writePlacements(w, r.Placements) }},
		{providersCSV, func(w *csv.Writer) error { return writeProviders(w, r.Providers) }},
		{classesCSV, func(w *csv.Writer) error { return writeClasses(w, r.Classes) }},
		{timeseriesCSV, func(w *csv.Writer) error { return writeSeries(w, r.Classes, r.Series) }},
		{lossesCSV, func(w *csv.Writer) error { return writeLosses(w, r.Losses) }},
	}
	for _, f := range files {
		if err := writeCSV(filepath.Join(dir, f.name), f.fill); err != nil {
			return fmt.Errorf("write run %s/%s: %w", r.Variant, f.name, err)
		}
	}
	return nil
}

// writeCSV creates path and lets fill write its rows through a buffer big
// enough that a million rows cost a few hundred system calls, not millions.
func writeCSV(path string, fill func(*csv.Writer) error) error {
	return writeFile(path, 1<<20, func(bw io.Writer) error {
		w := csv.NewWriter(bw)
		if err := fill(w); err != nil {
			return err
		}
		w.Flush()
		return w.Error()
	})
}

// writeFile creates path and lets write fill it through a buffer of size
// bytes, reporting the first error of writing, flushing or closing.
func writeFile(path string, size int, write func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, size)
	if err := write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// writeJobs writes one row per job; end is when the run stopped, at which
// the wait of a job still placing is censored if its deadline had not come.
func writeJobs(w *csv.Writer, jobs []JobRecord, end time.Duration) error {
	if err := w.Write([]string{
		"id", "requester", "submitted_s", "placed_s", "ended_s", "wait_s",
		"state", "cpu_millis", "memory_bytes", "run_s", "constrained", "epochs",
		"class", "cpu_s", "paid", "subsidy", "currency", "reason", "code", "capacity_wait_s",
		"deadline_s", "censored",
	}); err != nil {
		return err
	}
	row := make([]string, 22)
	for i := range jobs {
		j := &jobs[i]
		wait, censored := j.CensoredWait(end)
		row[0] = strconv.Itoa(j.ID)
		row[1] = strconv.Itoa(j.Requester)
		row[2] = fmtSeconds(j.Submitted)
		row[3] = fmtOptSeconds(j.Placed)
		row[4] = fmtOptSeconds(j.Ended)
		row[5] = fmtSeconds(wait)
		row[6] = j.State
		row[7] = strconv.FormatUint(j.CPUMillis, 10)
		row[8] = strconv.FormatUint(j.MemoryBytes, 10)
		row[9] = fmtSeconds(j.Run)
		row[10] = strconv.FormatBool(j.Constrained)
		row[11] = strconv.FormatUint(j.Epochs, 10)
		row[12] = j.Class
		row[13] = strconv.FormatFloat(j.CPUSeconds, 'f', 3, 64)
		row[14] = fmtMoney(j.Paid)
		row[15] = fmtMoney(j.Subsidy)
		row[16] = j.Currency
		row[17] = j.Reason
		row[18] = j.Code
		row[19] = fmtSeconds(j.CapacityWait)
		row[20] = ""
		if j.Deadline > 0 {
			row[20] = fmtSeconds(j.Deadline)
		}
		row[21] = strconv.FormatBool(censored)
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

func writePlacements(w *csv.Writer, ps []PlacementRecord) error {
	if err := w.Write([]string{
		"job", "epoch", "provider", "class", "region", "at_s", "latency_s",
		"quoted", "currency",
	}); err != nil {
		return err
	}
	row := make([]string, 9)
	for i := range ps {
		p := &ps[i]
		row[0] = strconv.Itoa(p.Job)
		row[1] = strconv.FormatUint(p.Epoch, 10)
		row[2] = strconv.Itoa(p.Provider)
		row[3] = p.Class
		row[4] = p.Region
		row[5] = fmtSeconds(p.At)
		row[6] = fmtSeconds(p.Latency)
		row[7] = fmtMoney(p.Quoted)
		row[8] = p.Currency
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

func writeProviders(w *csv.Writer, ps []ProviderRecord) error {
	if err := w.Write([]string{
		"id", "class", "region", "operator", "cpu_millis", "leases", "crashes",
		"busy_cpu_s", "utilisation", "revenue", "subsidy", "currency", "dead_asks",
		"up_s", "wholesale", "site",
	}); err != nil {
		return err
	}
	row := make([]string, 16)
	for i := range ps {
		p := &ps[i]
		row[0] = strconv.Itoa(p.ID)
		row[1] = p.Class
		row[2] = p.Region
		row[3] = p.Operator
		row[4] = strconv.FormatUint(p.CPUMillis, 10)
		row[5] = strconv.Itoa(p.Leases)
		row[6] = strconv.Itoa(p.Crashes)
		row[7] = strconv.FormatFloat(p.BusyCPUSecs, 'f', 3, 64)
		row[8] = fmtRatio(p.Utilisation)
		row[9] = fmtMoney(p.Revenue)
		row[10] = fmtMoney(p.Subsidy)
		row[11] = p.Currency
		row[12] = strconv.Itoa(p.DeadAsks)
		row[13] = strconv.FormatFloat(p.UpSecs, 'f', 3, 64)
		row[14] = fmtMoney(p.Wholesale)
		row[15] = ""
		if p.Retailer {
			row[15] = strconv.Itoa(p.Site)
		}
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

func writeClasses(w *csv.Writer, cs []ClassRecord) error {
	if err := w.Write([]string{
		"class", "providers", "leases", "utilisation", "revenue", "subsidy", "currency", "wholesale", "site",
	}); err != nil {
		return err
	}
	row := make([]string, 9)
	for i := range cs {
		c := &cs[i]
		row[0] = c.Class
		row[1] = strconv.Itoa(c.Providers)
		row[2] = strconv.Itoa(c.Leases)
		row[3] = fmtRatio(c.Utilisation)
		row[4] = fmtMoney(c.Revenue)
		row[5] = fmtMoney(c.Subsidy)
		row[6] = c.Currency
		row[7] = fmtMoney(c.Wholesale)
		row[8] = c.Site
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

// writeSeries writes one row per sample, with a util_<class> column per
// class in the order of classes; a sample with fewer ByClass values than
// classes leaves the rest empty.
func writeSeries(w *csv.Writer, classes []ClassRecord, ss []Sample) error {
	header := []string{"at_s", "placing", "running", "done", "up", "utilisation"}
	for _, c := range classes {
		header = append(header, "util_"+c.Class)
	}
	if err := w.Write(header); err != nil {
		return err
	}
	row := make([]string, len(header))
	for i := range ss {
		s := &ss[i]
		row[0] = fmtSeconds(s.At)
		row[1] = strconv.Itoa(s.Placing)
		row[2] = strconv.Itoa(s.Running)
		row[3] = strconv.Itoa(s.Done)
		row[4] = strconv.Itoa(s.Up)
		row[5] = fmtRatio(s.Utilisation)
		for k := range classes {
			row[6+k] = ""
			if k < len(s.ByClass) {
				row[6+k] = fmtRatio(s.ByClass[k])
			}
		}
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

func writeLosses(w *csv.Writer, ls []LossRecord) error {
	if err := w.Write([]string{
		"job", "epoch", "provider", "crashed_s", "detected_s", "replaced_s",
		"detection_s", "replacement_s", "by_restart",
	}); err != nil {
		return err
	}
	row := make([]string, 9)
	for i := range ls {
		l := &ls[i]
		row[0] = strconv.Itoa(l.Job)
		row[1] = strconv.FormatUint(l.Epoch, 10)
		row[2] = strconv.Itoa(l.Provider)
		row[3] = fmtSeconds(l.Crashed)
		row[4] = fmtOptSeconds(l.Detected)
		row[5] = fmtOptSeconds(l.Replaced)
		row[6], row[7] = "", ""
		if l.Detected >= 0 {
			row[6] = fmtSeconds(l.Detection())
			if l.Replaced >= 0 {
				row[7] = fmtSeconds(l.Replacement())
			}
		}
		row[8] = strconv.FormatBool(l.ByRestart)
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

// fmtSeconds writes d in seconds, rounded to the millisecond, from integers
// so that no float artefact ("0.30000000000000004") reaches a CSV.
func fmtSeconds(d time.Duration) string {
	ms := int64(d.Round(time.Millisecond) / time.Millisecond)
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	frac := strconv.FormatInt(ms%1000, 10)
	return sign + strconv.FormatInt(ms/1000, 10) + "." + strings.Repeat("0", 3-len(frac)) + frac
}

// fmtOptSeconds is fmtSeconds, with the -1 of "never" as an empty cell.
func fmtOptSeconds(d time.Duration) string {
	if d < 0 {
		return ""
	}
	return fmtSeconds(d)
}

func fmtMoney(x float64) string { return strconv.FormatFloat(x, 'f', 6, 64) }
func fmtRatio(x float64) string { return strconv.FormatFloat(x, 'f', 6, 64) }

// Manifest describes a simulation run for reproduction: the scenario file
// verbatim with its hash, the seed, the build, and one entry per result.
type Manifest struct {
	Scenario       string `json:"scenario"`      // the scenario's name
	ScenarioFile   string `json:"scenario_file"` // the file's base name
	ScenarioSHA256 string `json:"scenario_sha256"`
	ScenarioText   string `json:"scenario_text"` // the file, verbatim
	// Sets are the PATH=VALUE assignments (--set) made to the scenario
	// before it was parsed, in order.
	Sets      []string         `json:"sets,omitempty"`
	Seed      uint64           `json:"seed"`
	Runs      int              `json:"runs"`
	Commit    string           `json:"commit"` // the commit the binary was built from, as the caller knows it
	GoVersion string           `json:"go_version"`
	Results   []ManifestResult `json:"results"` // one per variant and run
}

// ManifestResult is the summary of one Result in a Manifest.
type ManifestResult struct {
	Variant          string  `json:"variant"`
	Seed             uint64  `json:"seed"`
	Dir              string  `json:"dir"` // where WriteRun wrote its CSVs
	TraceHash        string  `json:"trace_hash"`
	Events           uint64  `json:"events"`
	SimSeconds       float64 `json:"sim_seconds"`
	WallSeconds      float64 `json:"wall_seconds"`
	EventsPerSecond  float64 `json:"events_per_second"`
	BytesPerProvider float64 `json:"bytes_per_provider"`
	Jobs             int     `json:"jobs"`
	Providers        int     `json:"providers"`
}

// NewManifest describes a run of the scenario read from scenarioPath, whose
// bytes were scenarioText, with the given seed and number of runs. dirs[i]
// is where the CSVs of rs[i] went (best relative to the manifest's
// directory); missing entries leave Dir empty. The scenario's name is taken
// from the results, or from the file name when there are none.
func NewManifest(scenarioPath string, scenarioText []byte, commit string, seed uint64, runs int, rs []*Result, dirs []string) Manifest {
	sum := sha256.Sum256(scenarioText)
	base := filepath.Base(scenarioPath)
	m := Manifest{
		Scenario:       strings.TrimSuffix(base, filepath.Ext(base)),
		ScenarioFile:   base,
		ScenarioSHA256: hex.EncodeToString(sum[:]),
		ScenarioText:   string(scenarioText),
		Seed:           seed,
		Runs:           runs,
		Commit:         commit,
		GoVersion:      runtime.Version(),
		Results:        make([]ManifestResult, 0, len(rs)),
	}
	for i, r := range rs {
		if r == nil {
			continue
		}
		if r.Scenario != "" {
			m.Scenario = r.Scenario
		}
		mr := ManifestResult{
			Variant:          r.Variant,
			Seed:             r.Seed,
			TraceHash:        r.TraceHash,
			Events:           r.Events,
			SimSeconds:       r.SimTime.Seconds(),
			WallSeconds:      r.Wall.Seconds(),
			EventsPerSecond:  eventsPerSecond(r),
			BytesPerProvider: jsonSafe(r.BytesPerProvider),
			Jobs:             len(r.Jobs),
			Providers:        len(r.Providers),
		}
		if i < len(dirs) {
			mr.Dir = dirs[i]
		}
		m.Results = append(m.Results, mr)
	}
	return m
}

// WriteManifest writes m, indented, to dir/manifest.json, creating dir if
// needed.
func WriteManifest(dir string, m Manifest) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	b = append(b, '\n')
	if err := os.WriteFile(filepath.Join(dir, manifestJSON), b, 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// jsonSafe maps NaN and infinities, which encoding/json refuses, to 0, so
// that one odd measurement cannot cost the whole manifest.
func jsonSafe(x float64) float64 {
	if !finite(x) {
		return 0
	}
	return x
}

func eventsPerSecond(r *Result) float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Events) / r.Wall.Seconds()
}

// Summary writes a short fixed-width table to w, one row per result in the
// order of rs: variant, seed, jobs, share placed and succeeded, placement
// wait percentiles, median price per CPU-hour of succeeded jobs, mean of the
// utilisation time series, events, events per wall second, and wall time.
// The wait percentiles are over every job: a job never placed counts as
// waiting until its deadline (JobRecord.CensoredWait), and a line under the
// table says how many were so censored. A statistic with no data behind it
// (no job, say) is "-". Percentiles are nearest-rank. When a run had
// crashes, asks to dead providers or jobs waiting for capacity, a second
// table follows with the figures of Faults.
func Summary(w io.Writer, rs []*Result) {
	rows := [][]string{{
		"variant", "seed", "jobs", "placed%", "succeeded%",
		"wait_p50_ms", "wait_p90_ms", "wait_p99_ms", "price_cpu_h_p50",
		"util_mean", "events", "events/s", "wall",
	}}
	censored := 0
	for _, r := range rs {
		if r == nil {
			continue
		}
		st := summarise(r)
		censored += st.censored
		rows = append(rows, []string{
			variantName(r),
			strconv.FormatUint(r.Seed, 10),
			strconv.Itoa(len(r.Jobs)),
			fmtStat(st.placedPct, 1),
			fmtStat(st.succeededPct, 1),
			fmtStat(st.waitP50, 1),
			fmtStat(st.waitP90, 1),
			fmtStat(st.waitP99, 1),
			fmtStat(st.priceP50, 4),
			fmtStat(st.utilMean, 3),
			strconv.FormatUint(r.Events, 10),
			fmtStat(st.eventsPerSec, 0),
			r.Wall.Round(time.Millisecond).String(),
		})
	}
	writeTable(w, rows)
	if censored > 0 {
		fmt.Fprintf(w, "waits: submission to first lease; %d jobs never placed count as waiting until their placement deadline (censored)\n", censored)
	}
	faults := [][]string{{
		"variant", "seed", "crashes", "leases_lost", "by_restart", "detect_p50_ms", "detect_p99_ms",
		"replace_p50_ms", "replace_p99_ms", "jobs_lost", "dead_asks", "waited", "cap_wait_p50_ms", "cap_wait_p99_ms",
	}}
	shown := false
	for _, r := range rs {
		if r == nil {
			continue
		}
		f := FaultsOf(r)
		shown = shown || f.Crashes > 0 || f.DeadAsks > 0 || f.Waited > 0
		faults = append(faults, []string{
			variantName(r),
			strconv.FormatUint(r.Seed, 10),
			strconv.Itoa(f.Crashes),
			strconv.Itoa(f.LeasesLost),
			strconv.Itoa(f.ByRestart),
			fmtMillis(f.DetectP50),
			fmtMillis(f.DetectP99),
			fmtMillis(f.ReplaceP50),
			fmtMillis(f.ReplaceP99),
			strconv.Itoa(f.JobsLost),
			strconv.FormatUint(f.DeadAsks, 10),
			strconv.Itoa(f.Waited),
			fmtMillis(f.CapacityWaitP50),
			fmtMillis(f.CapacityWaitP99),
		})
	}
	if shown {
		io.WriteString(w, "\n")
		writeTable(w, faults)
	}
}

// writeTable writes rows as fixed-width columns: the first left-aligned,
// the rest right-aligned.
func writeTable(w io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		b.Reset()
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0:
				b.WriteString(c + pad) // names read best left-aligned
			default:
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteByte('\n')
		io.WriteString(w, b.String())
	}
}

// Faults sums up how a run weathered its providers' crashes and its queue,
// in the figures a chaos run on real daemons reports. Percentiles are
// nearest-rank; a percentile with no data behind it is -1.
type Faults struct {
	Crashes     int // provider crashes
	LeasesLost  int // leases live on a provider when it crashed
	Undetected  int // of those, never declared lost: the job ended first, or the run stopped
	ByRestart   int // of those declared lost, found by a watch of the provider back up (CODE_RUN_LOST)
	NotReplaced int // of those declared lost, never followed by another lease accepted
	// DetectP50 and DetectP99 are the time from a crash to the requester
	// declaring a lease lost, over the leases declared lost.
	DetectP50, DetectP99 time.Duration
	// ReplaceP50 and ReplaceP99 are the time from a lease declared lost to
	// the job's next lease accepted, over the leases re-placed.
	ReplaceP50, ReplaceP99 time.Duration
	JobsLost               int    // jobs JobRecord.Lost
	DeadAsks               uint64 // offer requests and leases that reached a provider down
	Waited                 int    // jobs that waited for capacity
	// CapacityWaitP50 and CapacityWaitP99 are the time the jobs that
	// waited for capacity waited.
	CapacityWaitP50, CapacityWaitP99 time.Duration
}

// FaultsOf computes the Faults of a result.
func FaultsOf(r *Result) Faults {
	f := Faults{DeadAsks: r.DeadAsks, LeasesLost: len(r.Losses)}
	for i := range r.Providers {
		f.Crashes += r.Providers[i].Crashes
	}
	var detect, replace, waits []time.Duration
	for i := range r.Losses {
		l := &r.Losses[i]
		switch {
		case l.Detected < 0:
			f.Undetected++
			continue
		case l.ByRestart:
			f.ByRestart++
		}
		detect = append(detect, l.Detection())
		if l.Replaced < 0 {
			f.NotReplaced++
			continue
		}
		replace = append(replace, l.Replacement())
	}
	for i := range r.Jobs {
		j := &r.Jobs[i]
		if j.Lost() {
			f.JobsLost++
		}
		if j.CapacityWait > 0 {
			f.Waited++
			waits = append(waits, j.CapacityWait)
		}
	}
	f.DetectP50, f.DetectP99 = durationPercentile(detect, 50), durationPercentile(detect, 99)
	f.ReplaceP50, f.ReplaceP99 = durationPercentile(replace, 50), durationPercentile(replace, 99)
	f.CapacityWaitP50, f.CapacityWaitP99 = durationPercentile(waits, 50), durationPercentile(waits, 99)
	return f
}

// durationPercentile is the nearest-rank p-th percentile of ds, which it
// sorts, or -1 if there is none.
func durationPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	slices.Sort(ds)
	k := int(math.Ceil(p / 100 * float64(len(ds))))
	return ds[min(max(k, 1), len(ds))-1]
}

// fmtMillis writes a duration in milliseconds, or "-" for the -1 of none.
func fmtMillis(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

// summaryStats are the numbers of one Summary row; NaN means no data.
type summaryStats struct {
	placedPct, succeededPct   float64
	censored                  int     // jobs whose wait is censored at their deadline
	waitP50, waitP90, waitP99 float64 // ms
	priceP50                  float64
	utilMean                  float64
	eventsPerSec              float64
}

func summarise(r *Result) summaryStats {
	nan := math.NaN()
	st := summaryStats{placedPct: nan, succeededPct: nan, utilMean: nan, eventsPerSec: nan}
	if n := len(r.Jobs); n > 0 {
		var placed, ok int
		for i := range r.Jobs {
			if r.Jobs[i].Placed >= 0 {
				placed++
			}
			if r.Jobs[i].State == "succeeded" {
				ok++
			}
		}
		st.placedPct = 100 * float64(placed) / float64(n)
		st.succeededPct = 100 * float64(ok) / float64(n)
	}
	waits := waitsMillis(r)
	st.censored = len(r.Jobs) - countPlaced(r)
	slices.Sort(waits)
	st.waitP50 = percentile(waits, 50)
	st.waitP90 = percentile(waits, 90)
	st.waitP99 = percentile(waits, 99)
	prices := pricesPerCPUHour(r)
	slices.Sort(prices)
	st.priceP50 = percentile(prices, 50)
	st.utilMean = meanWhileArriving(r, func(s *Sample) float64 { return s.Utilisation })
	if r.Wall > 0 {
		st.eventsPerSec = eventsPerSecond(r)
	}
	return st
}

// meanWhileArriving is the mean of a figure of the time series over its
// samples while jobs arrive (up to the last arrival): the drain after it
// would pull a utilisation towards zero. NaN if no sample has it.
func meanWhileArriving(r *Result, value func(*Sample) float64) float64 {
	var last time.Duration
	if n := len(r.Jobs); n > 0 {
		last = r.Jobs[n-1].Submitted
	}
	var sum float64
	var k int
	for i := range r.Series {
		if x := value(&r.Series[i]); r.Series[i].At <= last && finite(x) {
			sum += x
			k++
		}
	}
	if k == 0 {
		return math.NaN()
	}
	return sum / float64(k)
}

// waitsMillis returns, in a new slice, the placement wait in milliseconds of
// every job of r, in job order: for a job never placed, the wait censored at
// its deadline (JobRecord.CensoredWait).
func waitsMillis(r *Result) []float64 {
	out := make([]float64, 0, len(r.Jobs))
	for i := range r.Jobs {
		w, _ := r.Jobs[i].CensoredWait(r.SimTime)
		out = append(out, float64(w)/float64(time.Millisecond))
	}
	return out
}

// countPlaced counts the jobs of r placed at least once.
func countPlaced(r *Result) int {
	n := 0
	for i := range r.Jobs {
		if r.Jobs[i].Placed >= 0 {
			n++
		}
	}
	return n
}

// pricesPerCPUHour returns, in a new slice, what each succeeded job paid per
// CPU-hour billed (every lease it held, a lost one included). Jobs billed
// nothing have no such price and are left out.
func pricesPerCPUHour(r *Result) []float64 {
	out := make([]float64, 0, len(r.Jobs))
	for i := range r.Jobs {
		j := &r.Jobs[i]
		if j.State != "succeeded" || j.CPUSeconds <= 0 {
			continue
		}
		p := j.Paid / (j.CPUSeconds / 3600)
		if finite(p) {
			out = append(out, p)
		}
	}
	return out
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or NaN if it is empty.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	k := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(k, 1), n)-1]
}

func fmtStat(x float64, prec int) string {
	if math.IsNaN(x) {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', prec, 64)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// variantName is how a result is labelled in tables and legends.
func variantName(r *Result) string {
	switch {
	case r.Variant != "":
		return r.Variant
	case r.Scenario != "":
		return r.Scenario
	}
	return "run"
}
