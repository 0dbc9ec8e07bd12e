// Package maglev builds weighted Maglev consistent-hashing lookup tables
// (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI'16) and provides the flow hash the fast path feeds them.
//
// The control plane calls New whenever the backend set or a weight changes
// and hands the resulting immutable *Table to the workers, which swap it in
// at the top of their poll loop. Workers only call Hash and Table.Lookup;
// both are allocation-free and safe for concurrent use.
//
// Everything here is deterministic across processes and restarts: the same
// backends (in any order) always produce the same table, and the same flow
// always produces the same hash, so two load balancers behind one ECMP group
// send a flow to the same backend.
package maglev
