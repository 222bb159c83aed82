// Package simulations is the discrete-event simulator of a cuivre federation: a
// virtual clock, models of the network, latency, churn and workload, scenarios
// and reports, driving the very same scheduler code as the daemon.
package simulations
