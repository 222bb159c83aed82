package simulations

import "math"

// PublicFigures are what a run says of its subsidised classes, the public
// sites a scenario opens to competition or keeps closed: their share of the
// federation's capacity and of its work, and what their subsidy bought.
// Every figure is NaN when no class of the run is subsidised.
type PublicFigures struct {
	// CapacityShare is the public sites' CPUs over the federation's.
	CapacityShare float64
	// WorkShare is the CPU-seconds the public sites held for leases over
	// the federation's: their share of the work.
	WorkShare float64
	// Utilisation is their busy CPU-seconds over their capacity while up.
	Utilisation float64
	// Subsidy is what public funds paid on top of the customers, in the
	// currency of the sites' prices.
	Subsidy float64
	// SubsidyPerJobHour is Subsidy over the hours of run of the jobs that
	// succeeded, on any provider: what the public paid per hour of work
	// the federation served its customers.
	SubsidyPerJobHour float64
	// SubsidyPerPublicCPUHour is Subsidy over the CPU-hours the public
	// sites held for leases: the public price of their work.
	SubsidyPerPublicCPUHour float64
}

// PublicOf computes a run's PublicFigures.
func PublicOf(r *Result) PublicFigures {
	nan := math.NaN()
	f := PublicFigures{nan, nan, nan, nan, nan, nan}
	public := map[string]bool{}
	for _, c := range r.Classes {
		if c.SubsidyRate > 0 {
			public[c.Class] = true
		}
	}
	if len(public) == 0 {
		return f
	}
	var capAll, capPub, busyAll, busyPub, utilWeighted float64
	f.Subsidy = 0
	for _, p := range r.Providers {
		capAll += float64(p.CPUMillis)
		busyAll += p.BusyCPUSecs
		f.Subsidy += p.Subsidy
		if public[p.Class] {
			capPub += float64(p.CPUMillis)
			busyPub += p.BusyCPUSecs
			utilWeighted += p.Utilisation * float64(p.CPUMillis)
		}
	}
	if capAll > 0 {
		f.CapacityShare = capPub / capAll
	}
	if busyAll > 0 {
		f.WorkShare = busyPub / busyAll
	}
	if capPub > 0 {
		f.Utilisation = utilWeighted / capPub
	}
	var jobHours float64
	for i := range r.Jobs {
		if j := &r.Jobs[i]; j.State == "succeeded" {
			jobHours += j.Run.Hours()
		}
	}
	if jobHours > 0 {
		f.SubsidyPerJobHour = f.Subsidy / jobHours
	}
	if busyPub > 0 {
		f.SubsidyPerPublicCPUHour = f.Subsidy / (busyPub / 3600)
	}
	return f
}
