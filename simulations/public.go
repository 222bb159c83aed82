package simulations

import "math"

// PublicFigures are what a run says of its subsidised classes, the public
// sites a scenario opens to competition or keeps closed: their share of the
// federation's capacity and of its work, and what their subsidy bought.
// The work on a site's hardware is its own leases and those its retailers
// run on its slices (Class.Wholesale); a retailer's slice is not counted
// as capacity beside the site's. Every figure is NaN when no class of the
// run is subsidised.
type PublicFigures struct {
	// CapacityShare is the public sites' CPUs over the federation's.
	CapacityShare float64
	// WorkShare is the CPU-seconds held for leases on the public sites'
	// hardware over the federation's: their share of the work.
	WorkShare float64
	// Utilisation is the busy CPU-seconds of their hardware over its
	// capacity while up, over the whole run (the drain included).
	Utilisation float64
	// UtilArrivals is the mean utilisation of their hardware over the
	// time series while jobs arrive, as util_mean is the federation's.
	UtilArrivals float64
	// Subsidy is what public funds paid on top of the customers and the
	// retailers, in the currency of the sites' prices.
	Subsidy float64
	// SubsidyPerJobHour is Subsidy over the hours of run of the jobs that
	// succeeded, on any provider: what the public paid per hour of work
	// the federation served its customers.
	SubsidyPerJobHour float64
	// SubsidyPerPublicCPUHour is Subsidy over the CPU-hours held for
	// leases on the public sites' hardware: the public price of their work.
	SubsidyPerPublicCPUHour float64
	// Wholesale is what retailers paid the public sites for their slices.
	Wholesale float64
	// MeanPrice is what the customers paid per CPU-hour billed, over every
	// job that succeeded: their total paid over their CPU-hours.
	MeanPrice float64
}

// PublicOf computes a run's PublicFigures.
func PublicOf(r *Result) PublicFigures {
	nan := math.NaN()
	f := PublicFigures{nan, nan, nan, nan, nan, nan, nan, nan, nan}
	public := map[string]bool{}
	for _, c := range r.Classes {
		if c.SubsidyRate > 0 {
			public[c.Class] = true
		}
	}
	if len(public) == 0 {
		return f
	}
	// The busy CPU-seconds of each site's retailers, by the site's ID.
	retailed := map[int]float64{}
	var capAll, capPub, busyAll, busyPub, utilWeighted float64
	f.Subsidy, f.Wholesale = 0, 0
	for _, p := range r.Providers {
		busyAll += p.BusyCPUSecs
		f.Subsidy += p.Subsidy
		if p.Retailer {
			retailed[p.Site] += p.BusyCPUSecs
			continue
		}
		capAll += float64(p.CPUMillis)
	}
	for _, p := range r.Providers {
		if !public[p.Class] || p.Retailer {
			continue
		}
		capPub += float64(p.CPUMillis)
		f.Wholesale += p.Wholesale
		busy, util := p.BusyCPUSecs, p.Utilisation
		if sold, ok := retailed[p.ID]; ok {
			busy += sold
			util = 0
			if cs := float64(p.CPUMillis) / 1000 * p.UpSecs; cs > 0 {
				util = busy / cs
			}
		}
		busyPub += busy
		utilWeighted += util * float64(p.CPUMillis)
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
	var jobHours, paid, cpuHours float64
	for i := range r.Jobs {
		if j := &r.Jobs[i]; j.State == "succeeded" {
			jobHours += j.Run.Hours()
			paid += j.Paid
			cpuHours += j.CPUSeconds / 3600
		}
	}
	if jobHours > 0 {
		f.SubsidyPerJobHour = f.Subsidy / jobHours
	}
	if busyPub > 0 {
		f.SubsidyPerPublicCPUHour = f.Subsidy / (busyPub / 3600)
	}
	if cpuHours > 0 {
		f.MeanPrice = paid / cpuHours
	}
	f.UtilArrivals = meanWhileArriving(r, func(s *Sample) float64 { return s.Public })
	return f
}

// RetailerFigures are what a run says of one kind of retailer of a site's
// slices (Wholesale.Retailers), per retailer of the kind.
type RetailerFigures struct {
	Name string
	// WorkShare is the CPU-seconds held for its leases over the
	// federation's.
	WorkShare float64
	// Utilisation is its busy CPU-seconds over its slice's while up.
	Utilisation float64
	// Revenue is what its customers paid it, Tariff what it paid for its
	// slice, and Margin the difference.
	Revenue, Tariff, Margin float64
}

// RetailersOf computes the figures of each kind of retailer of a run, in
// the order of its classes; none if no site sold slices.
func RetailersOf(r *Result) []RetailerFigures {
	var busyAll float64
	for _, p := range r.Providers {
		busyAll += p.BusyCPUSecs
	}
	var out []RetailerFigures
	for _, c := range r.Classes {
		if c.Site == "" || c.Providers == 0 {
			continue
		}
		f := RetailerFigures{Name: c.Class, Utilisation: c.Utilisation}
		n := float64(c.Providers)
		var busy float64
		for _, p := range r.Providers {
			if p.Class == c.Class {
				busy += p.BusyCPUSecs
			}
		}
		if busyAll > 0 {
			f.WorkShare = busy / busyAll / n
		}
		f.Revenue, f.Tariff = c.Revenue/n, c.Wholesale/n
		f.Margin = f.Revenue - f.Tariff
		out = append(out, f)
	}
	return out
}
