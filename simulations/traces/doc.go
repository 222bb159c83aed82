// Package traces converts public cluster traces into the simulator's trace
// CSV (at, cpu, memory, run; see docs/SIMULATOR.md, "Real workloads"):
//
//   - google2019: the instance_events table of Google's ClusterData 2019
//     (cluster-usage traces v3), as the JSON lines the public buckets hold or
//     as CSV with a header, plain or gzip-compressed. A job is an instance
//     (task): it arrives when submitted and runs for the time it was
//     scheduled.
//   - alibaba2018: batch_task.csv or batch_instance.csv of Alibaba's
//     cluster-trace-v2018. A job is a task of one instance, or an instance.
//
// Inputs may be gzip-compressed or tar archives (each file in one is an
// input). Conversion streams: every input is read once, in any order, and
// what is kept is sorted on disk (an external merge sort), so that inputs of
// many gigabytes need memory only for a sorted chunk or two. It is
// deterministic: the same inputs and options give the same bytes, whatever
// the order of the files.
package traces
