//go:build linux

package main

import _ "embed"

// tuningIdle is the part of configs/tuning.md about the idle mode
// (idle_spin, prefer_busy_poll, the NAPI defer settings), huge pages and
// zero-copy at start. The lab cannot measure them (copy mode, no hugetlb
// pool, no NIC interrupts), so it is text; writeTuning puts it after the
// busy_poll section.
//
//go:embed tuning_idle.md
var tuningIdle string
