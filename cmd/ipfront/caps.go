package main

import (
	"os"
	"strconv"
	"strings"
)

// The capabilities the data plane needs, by bit (capabilities(7)), and what
// for: a start that fails for want of one says which, instead of the
// kernel's bare "operation not permitted" from wherever it first showed.
// CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, as on kernels before
// 5.8.
var neededCaps = []struct {
	bit      uint
	name     string
	orSysAdm bool
}{
	{12, "CAP_NET_ADMIN (attach XDP, bind AF_XDP sockets)", false},
	{13, "CAP_NET_RAW (AF_XDP sockets)", false},
	{14, "CAP_IPC_LOCK (lock the UMEM)", false},
	{38, "CAP_PERFMON (the verifier's pointer arithmetic)", true},
	{39, "CAP_BPF (maps and programs)", true},
}

const capSysAdmin = 21

// missingCaps returns the needed capabilities that the effective set of a
// /proc/<pid>/status text lacks; none if the set cannot be read.
func missingCaps(status string) []string {
	var eff uint64
	found := false
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var err error
			if eff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				found = true
			}
		}
	}
	if !found {
		return nil
	}
	var out []string
	for _, c := range neededCaps {
		if eff&(1<<c.bit) == 0 && !(c.orSysAdm && eff&(1<<capSysAdmin) != 0) {
			out = append(out, c.name)
		}
	}
	return out
}

// ownMissingCaps is missingCaps of this process.
func ownMissingCaps() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	return missingCaps(string(b))
}
