package traces

import (
	"encoding/csv"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"strconv"
	"strings"
)

// Alibaba's cluster-trace-v2018, batch workloads: see schema.md and
// trace_2018.md under cluster-trace-v2018 in github.com/alibaba/clusterdata.
// The files have no header; the columns are, in order:
//
//	batch_task.csv      task_name, instance_num, job_name, task_type, status,
//	                    start_time, end_time, plan_cpu, plan_mem
//	batch_instance.csv  instance_name, task_name, job_name, task_type, status,
//	                    start_time, end_time, machine_id, seq_no, total_seq_no,
//	                    cpu_avg, cpu_max, mem_avg, mem_max
//
// Times are seconds since the trace's start, 0 standing for before or after
// it; CPU is in hundredths of a core; memory is normalised to the largest
// machine's, 0 to 100, with -1 or 101 for invalid values.

// The kinds of Alibaba file, by their number of columns.
const (
	aTaskFields     = 9
	aInstanceFields = 14
)

// The reasons an Alibaba row is dropped.
const (
	aDropMany      = "tasks of several instances (convert batch_instance.csv for their instances)"
	aDropNone      = "tasks of no instance"
	aDropNoStart   = "rows without a start time (0: before or after the trace)"
	aDropNoEnd     = "rows ended but with no end after their start"
	aDropNoRequest = "rows without plan_cpu or plan_mem"
	aDropNoUsage   = "rows without cpu_max or mem_max"
	aDropInvalid   = "rows with an invalid size (memory -1 or 101, CPU below 0)"
)

func (c *converter) alibaba(inputs []string) error {
	kind, kindFile := 0, ""
	for _, path := range inputs {
		err := c.eachSource(path, func(src *source) error { return c.alibabaFile(src, &kind, &kindFile) })
		if err != nil {
			return err
		}
	}
	return nil
}

func aKindName(n int) string {
	if n == aTaskFields {
		return "batch_task.csv"
	}
	return "batch_instance.csv"
}

func (c *converter) alibabaFile(src *source, kind *int, kindFile *string) error {
	r := csv.NewReader(src.r)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			if first {
				c.errs.add(src.name, 0, "empty")
			}
			return nil
		}
		if err != nil {
			if c.csvErr(src.name, err) {
				return nil
			}
			continue
		}
		line, _ := r.FieldPos(0)
		n := len(rec)
		if first && n > 5 && strings.TrimSpace(rec[5]) == "start_time" {
			continue // a header someone added
		}
		c.st.Records++
		if n != aTaskFields && n != aInstanceFields {
			c.errs.add(src.name, int64(line), "%d fields: batch_task.csv has %d, batch_instance.csv %d", n, aTaskFields, aInstanceFields)
			continue
		}
		if *kind == 0 {
			*kind, *kindFile = n, src.name
		} else if n != *kind {
			c.errs.add(src.name, int64(line), "a row of %s (%d fields) among rows of %s (from %s): convert one table at a time",
				aKindName(n), n, aKindName(*kind), *kindFile)
			continue
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if err := c.alibabaRow(src.name, int64(line), rec); err != nil {
			return err
		}
	}
}

// alibabaRow converts one row: a task of one instance (batch_task), or an
// instance's run (batch_instance).
func (c *converter) alibabaRow(file string, line int64, rec []string) error {
	task := len(rec) == aTaskFields
	num := func(col int, name string, empty bool) (float64, bool, bool) {
		s := rec[col]
		if s == "" {
			if !empty {
				c.errs.add(file, line, "%s: missing", name)
			}
			return 0, false, empty
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			c.errs.add(file, line, "%s %q: want a number", name, s)
			return 0, false, false
		}
		return v, true, true
	}
	start, _, ok1 := num(5, "start_time", false)
	end, _, ok2 := num(6, "end_time", false)
	if !ok1 || !ok2 {
		return nil
	}
	if start < 0 || end < 0 || start > 1e9 || end > 1e9 {
		c.errs.add(file, line, "start_time %s, end_time %s: want seconds since the trace's start, 0 or more", rec[5], rec[6])
		return nil
	}
	c.end = max(c.end, int64(math.Round(max(start, end)*1e9)))
	status := rec[4]
	j := job{open: -1}
	switch {
	case strings.EqualFold(status, "Terminated"), strings.EqualFold(status, "Failed"):
		if start <= 0 {
			c.st.drop(aDropNoStart, 1)
			return nil
		}
		if end <= start {
			c.st.drop(aDropNoEnd, 1)
			return nil
		}
	case strings.EqualFold(status, "Running"):
		if start <= 0 {
			c.st.drop(aDropNoStart, 1)
			return nil
		}
		if end <= start {
			j.open = int64(math.Round(start * 1e9))
		}
	default:
		if c.statuses == nil {
			c.statuses = map[string]bool{}
		}
		if !c.statuses[status] && len(c.statuses) >= 16 {
			status = "other"
		} else {
			c.statuses[status] = true
		}
		c.st.drop(fmt.Sprintf("rows of status %q (kept: Terminated, Failed, Running)", truncate(status)), 1)
		return nil
	}
	var cores, mem float64
	var hasCPU, hasMem, ok bool
	if task {
		n, _, nok := num(1, "instance_num", false)
		if !nok {
			return nil
		}
		switch {
		case n < 1:
			c.st.drop(aDropNone, 1)
			return nil
		case n > 1:
			c.st.drop(aDropMany, 1)
			return nil
		}
		if cores, hasCPU, ok = num(7, "plan_cpu", true); !ok {
			return nil
		}
		if mem, hasMem, ok = num(8, "plan_mem", true); !ok {
			return nil
		}
		if !hasCPU || !hasMem {
			c.st.drop(aDropNoRequest, 1)
			return nil
		}
	} else {
		if cores, hasCPU, ok = num(11, "cpu_max", true); !ok {
			return nil
		}
		if mem, hasMem, ok = num(13, "mem_max", true); !ok {
			return nil
		}
		if !hasCPU || !hasMem {
			c.st.drop(aDropNoUsage, 1)
			return nil
		}
	}
	if cores < 0 || mem < 0 || mem > 100 {
		c.st.drop(aDropInvalid, 1)
		return nil
	}

	j.at = int64(math.Round(start * 1e9))
	if j.open < 0 {
		j.run = int64(math.Round((end - start) * 1e9))
	}
	h := fnv.New64a()
	if task {
		fmt.Fprintf(h, "%s\x00%s", rec[2], rec[0])
	} else {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s", rec[2], rec[1], rec[0], rec[8])
	}
	j.id = h.Sum64()
	return c.emit(j, cores/100, mem/100*c.o.MemoryScale)
}
