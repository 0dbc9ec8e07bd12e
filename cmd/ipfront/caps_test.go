package main

import (
	"slices"
	"strings"
	"testing"
)

// TestMissingCaps: the needed capabilities absent from a status text's
// effective set are named; CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON; an
// unreadable set names nothing.
func TestMissingCaps(t *testing.T) {
	status := func(eff string) string { return "Name:\tipfront\nCapInh:\t0\nCapEff:\t" + eff + "\nCapBnd:\t0\n" }
	names := func(m []string) []string {
		var out []string
		for _, s := range m {
			out = append(out, strings.Fields(s)[0])
		}
		return out
	}
	for _, tc := range []struct {
		eff  string
		want []string
	}{
		{"000001ffffffffff", nil},                 // root
		{"000000c000007000", nil},                 // NET_ADMIN, NET_RAW, IPC_LOCK, PERFMON, BPF
		{"0000004000007000", []string{"CAP_BPF"}}, // PERFMON, not BPF
		{"0000000000207000", nil},                 // CAP_SYS_ADMIN instead of BPF and PERFMON
		{"0000000000000000", []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_PERFMON", "CAP_BPF"}},
	} {
		if got := names(missingCaps(status(tc.eff))); !slices.Equal(got, tc.want) {
			t.Errorf("CapEff %s: missing %v, want %v", tc.eff, got, tc.want)
		}
	}
	if got := missingCaps("Name:\tipfront\n"); got != nil {
		t.Errorf("no CapEff line: %v, want nothing", got)
	}
}
