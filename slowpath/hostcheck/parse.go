package hostcheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// parseCPUList parses a kernel CPU list ("0-3,8,10-11", as in
// smp_affinity_list and /sys/devices/system/cpu/online) into sorted ids.
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// formatCPUList is the inverse of parseCPUList, with ranges.
func formatCPUList(cpus []int) string {
	cpus = slices.Compact(slices.Sorted(slices.Values(cpus)))
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", cpus[i], cpus[j])
		} else {
			fmt.Fprintf(&b, "%d", cpus[i])
		}
		i = j + 1
	}
	return b.String()
}

// ethtoolField returns the value of "key: value" in ethtool's output (the
// first occurrence at or after the line starting section, if not empty).
func ethtoolField(out, section, key string) (string, bool) {
	lines := strings.Split(out, "\n")
	start := 0
	if section != "" {
		start = -1
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), section) {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return "", false
		}
	}
	for _, l := range lines[start:] {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && k == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// channels is what `ethtool -l` says about a device's queues.
type channels struct {
	maxRX, maxCombined int // pre-set maximums (0: n/a)
	rx, combined       int // current settings
}

func parseChannels(out string) (channels, bool) {
	num := func(section, key string) int {
		v, ok := ethtoolField(out, section, key)
		if !ok {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0 // "n/a"
		}
		return n
	}
	if !strings.Contains(out, "Current hardware settings:") {
		return channels{}, false
	}
	return channels{
		maxRX: num("Pre-set maximums:", "RX"), maxCombined: num("Pre-set maximums:", "Combined"),
		rx: num("Current hardware settings:", "RX"), combined: num("Current hardware settings:", "Combined"),
	}, true
}

// rss is what `ethtool -x` says: the indirection table, the hash key and
// which hash function and input transformation are on.
type rss struct {
	table        []int  // queue of each indirection entry
	key          []byte // nil if not shown
	functions    map[string]bool
	symmetricXOR bool // "RSS input transformation: symmetric-xor: on"
}

func parseRSS(out string) (rss, error) {
	r := rss{functions: map[string]bool{}}
	lines := strings.Split(out, "\n")
	section := ""
	for _, raw := range lines {
		l := strings.TrimSpace(raw)
		switch {
		case strings.HasPrefix(l, "RX flow hash indirection table"):
			section = "table"
			continue
		case l == "RSS hash key:":
			section = "key"
			continue
		case l == "RSS hash function:":
			section = "func"
			continue
		case l == "RSS input transformation:":
			section = "xfrm"
			continue
		case l == "":
			continue
		}
		switch section {
		case "table":
			idx, rest, ok := strings.Cut(l, ":")
			if _, err := strconv.Atoi(idx); !ok || err != nil {
				section = ""
				continue
			}
			for _, f := range strings.Fields(rest) {
				q, err := strconv.Atoi(f)
				if err != nil {
					return rss{}, fmt.Errorf("indirection table line %q", l)
				}
				r.table = append(r.table, q)
			}
		case "key":
			if strings.Contains(l, "not supported") {
				section = ""
				continue
			}
			for _, h := range strings.Split(l, ":") {
				b, err := strconv.ParseUint(h, 16, 8)
				if err != nil {
					return rss{}, fmt.Errorf("RSS hash key %q", l)
				}
				r.key = append(r.key, byte(b))
			}
			section = ""
		case "func", "xfrm":
			name, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			on := strings.TrimSpace(v) == "on"
			if section == "func" {
				r.functions[strings.TrimSpace(name)] = on
			} else if strings.TrimSpace(name) == "symmetric-xor" {
				r.symmetricXOR = on
			}
		}
	}
	if len(r.table) == 0 && r.key == nil {
		return rss{}, fmt.Errorf("no indirection table and no hash key in the output")
	}
	return r, nil
}

// symmetric reports whether the hash sends both directions of a flow to the
// same queue, and why. The Toeplitz hash of swapped addresses and ports is
// the same when the key repeats every 16 bits (the key window for each input
// bit then does not depend on which half the bit came from): the
// well-known symmetric key is 6d:5a repeated.
func (r rss) symmetric() (bool, string) {
	switch {
	case r.symmetricXOR:
		return true, "input transformation symmetric-xor is on"
	case r.functions["xor"]:
		return true, "hash function xor"
	case r.functions["toeplitz"] || len(r.functions) == 0:
		if len(r.key) < 2 {
			return false, "hash key unknown"
		}
		for i := 2; i < len(r.key); i++ {
			if r.key[i] != r.key[i%2] {
				return false, "Toeplitz key does not repeat every 16 bits"
			}
		}
		if r.key[0] == 0 && r.key[1] == 0 {
			return true, "Toeplitz key is all zeros (symmetric, but every flow hashes alike)"
		}
		return true, "Toeplitz key repeats every 16 bits"
	}
	for f, on := range r.functions {
		if on {
			return false, "hash function " + f
		}
	}
	return false, "no hash function on"
}

// symmetricKey returns the 6d:5a symmetric key of n bytes in ethtool's
// notation.
func symmetricKey(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = [2]string{"6d", "5a"}[i%2]
	}
	return strings.Join(parts, ":")
}

// irq is one line of /proc/interrupts.
type irq struct {
	num  int
	name string // the action name, the last field
}

// parseInterrupts returns the numbered IRQs of /proc/interrupts with their
// names.
func parseInterrupts(out string) map[int]irq {
	m := map[int]irq{}
	lines := strings.Split(out, "\n")
	if len(lines) == 0 {
		return m
	}
	ncpu := len(strings.Fields(lines[0]))
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
		if err != nil {
			continue // NMI, LOC, ...
		}
		// num, one count per CPU, chip, hwirq-type..., name: the name is
		// the last field (names have no blanks).
		if len(f) < 1+ncpu+1 {
			continue
		}
		m[n] = irq{num: n, name: f[len(f)-1]}
	}
	return m
}

// queueOfIRQ guesses the RX queue an interrupt serves from its name, as the
// common drivers name them: "i40e-eth1-TxRx-3", "eth1-TxRx-3", "ice-eth1-TxRx-3",
// "mlx5_comp3@pci:0000:3b:00.0", "virtio0-input.3", "eth1-rx-3". Vectors of
// the device that serve no RX queue (misc, async events, TX only) return
// false.
func queueOfIRQ(name string) (int, bool) {
	base, _, _ := strings.Cut(name, "@")
	low := strings.ToLower(base)
	for _, not := range []string{"misc", "async", "cmd", "ctrl", "fdir", "aq", "mgmt", "output", "-tx-", "config", "pages"} {
		if strings.Contains(low, not) {
			return 0, false
		}
	}
	// The queue number ends the name; "virtio3-rx" names a device, not a
	// queue.
	end := len(base)
	start := end
	for start > 0 && base[start-1] >= '0' && base[start-1] <= '9' {
		start--
	}
	if start == end {
		return 0, false
	}
	q, err := strconv.Atoi(base[start:end])
	return q, err == nil
}
