package hostcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// fakeHost is a Source of captured output: files, directories and ethtool
// answers by their arguments.
type fakeHost struct {
	files   map[string]string
	dirs    map[string][]string
	ethtool map[string]string // "-x eth1" -> stdout
	errs    map[string]error  // "-x eth1" -> error
}

func (h *fakeHost) ReadFile(path string) (string, error) {
	if s, ok := h.files[path]; ok {
		return s, nil
	}
	return "", fmt.Errorf("open %s: %w", path, os.ErrNotExist)
}

func (h *fakeHost) ReadDir(path string) ([]string, error) {
	if d, ok := h.dirs[path]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("open %s: %w", path, os.ErrNotExist)
}

func (h *fakeHost) Ethtool(args ...string) (string, error) {
	k := strings.Join(args, " ")
	if err, ok := h.errs[k]; ok {
		return "", err
	}
	if s, ok := h.ethtool[k]; ok {
		return s, nil
	}
	return "", fmt.Errorf("ethtool %s: Operation not supported", k)
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// i40eHost is an 8-CPU host with a 4-queue i40e port eth1 set up as the
// bare-metal runbook says: symmetric RSS over the four queues, each queue's
// interrupt on CPUs 2..5, LRO and hardware GRO off, NAPI deferral on, 64
// free huge pages, no irqbalance.
func i40eHost(t *testing.T) *fakeHost {
	h := &fakeHost{
		files: map[string]string{
			"/sys/devices/system/cpu/online":           "0-7\n",
			"/proc/interrupts":                         fixture(t, "i40e/interrupts.txt"),
			"/proc/meminfo":                            fixture(t, "i40e/meminfo.txt"),
			"/proc/sys/net/core/busy_poll":             "0\n",
			"/sys/class/net/eth1/napi_defer_hard_irqs": "2\n",
			"/sys/class/net/eth1/gro_flush_timeout":    "200000\n",
			"/proc/1/comm":                             "systemd\n",
			"/proc/812/comm":                           "sshd\n",
		},
		dirs: map[string][]string{
			"/sys/class/net/eth1/queues":          {"rx-0", "rx-1", "rx-2", "rx-3", "tx-0", "tx-1", "tx-2", "tx-3"},
			"/sys/class/net/eth1/device/msi_irqs": {"125", "126", "127", "128", "129"},
			"/proc":                               {"1", "812", "self", "sys", "interrupts"},
		},
		ethtool: map[string]string{
			"-i eth1": fixture(t, "i40e/ethtool-i.txt"),
			"-l eth1": fixture(t, "i40e/ethtool-l.txt"),
			"-x eth1": fixture(t, "i40e/ethtool-x-symmetric.txt"),
			"-k eth1": strings.Replace(fixture(t, "i40e/ethtool-k.txt"), "generic-receive-offload: on", "generic-receive-offload: off", 1),
		},
	}
	for q, cpu := range []string{"2", "3", "4", "5"} {
		h.files[fmt.Sprintf("/proc/irq/%d/smp_affinity_list", 126+q)] = cpu + "\n"
	}
	return h
}

// i40eSpec is the configuration the host above is set up for.
func i40eSpec() *config.Spec {
	return &config.Spec{
		Path: "ipfront.toml",
		Dataplane: config.Dataplane{
			Interfaces: []string{"eth1"}, CPUs: []int{2, 3, 4, 5}, XDPMode: config.XDPNative,
			BusyPoll: false, IdleSpin: 50 * time.Microsecond, PreferBusyPoll: true,
			BatchSize: 64, RingSize: 2048, FrameSize: 4096, Frames: 8192,
			ZeroCopy: config.ZeroCopyAuto, HugePages: config.HugePagesAuto,
		},
		TargetSets: []config.TargetSet{{Name: "web", Forwarding: "dsr"}},
	}
}

// finding returns the finding named check, failing the test if there is
// none.
func finding(t *testing.T, fs []Finding, check string) Finding {
	t.Helper()
	for _, f := range fs {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no %q finding in %+v", check, fs)
	return Finding{}
}

func TestWellSetUpHost(t *testing.T) {
	r := Check(i40eHost(t), i40eSpec())
	if r.Problems != 0 || r.Warnings != 0 {
		var b bytes.Buffer
		r.WriteText(&b)
		t.Fatalf("a host set up by the runbook: %d problems, %d warnings, want none:\n%s", r.Problems, r.Warnings, b.String())
	}
	ifc := r.Interfaces[0]
	if ifc.Driver != "i40e" || ifc.RXQueues != 4 || len(ifc.Workers) != 4 || ifc.Workers[3] != (Worker{Queue: 3, CPU: 5}) {
		t.Errorf("interface = %+v, want i40e, 4 RX queues, workers on queues 0-3 pinned to CPUs 2-5", ifc)
	}
	for _, check := range []string{"driver", "queues", "rss_table", "rss_symmetric", "irq_affinity", "offloads", "napi_defer"} {
		if f := finding(t, ifc.Findings, check); f.Status != OK {
			t.Errorf("%s = %+v, want ok", check, f)
		}
	}
	for _, check := range []string{"cpus", "huge_pages", "busy_poll", "irqbalance"} {
		if f := finding(t, r.Host, check); f.Status != OK {
			t.Errorf("host %s = %+v, want ok", check, f)
		}
	}
}

func TestMisconfiguredHost(t *testing.T) {
	h := i40eHost(t)
	h.ethtool["-x eth1"] = fixture(t, "i40e/ethtool-x.txt") // i40e's default, random key
	h.ethtool["-k eth1"] = strings.Replace(h.ethtool["-k eth1"], "large-receive-offload: off", "large-receive-offload: on", 1)
	h.files["/proc/irq/127/smp_affinity_list"] = "0-7\n" // queue 1 floats
	h.files["/sys/class/net/eth1/napi_defer_hard_irqs"] = "0\n"
	h.files["/proc/meminfo"] = strings.Replace(h.files["/proc/meminfo"], "HugePages_Free:       64", "HugePages_Free:        3", 1)
	h.files["/proc/977/comm"] = "irqbalance\n"
	h.dirs["/proc"] = append(h.dirs["/proc"], "977")
	spec := i40eSpec()
	spec.Dataplane.Queues = []int{0, 1} // RSS still spreads over 4
	spec.Dataplane.CPUs = []int{2, 3}
	spec.Dataplane.HugePages = config.HugePagesOn
	spec.TargetSets = append(spec.TargetSets, config.TargetSet{Name: "ftp", Forwarding: "nat"})

	r := Check(h, spec)
	ifc := r.Interfaces[0]
	for _, c := range []struct {
		check  string
		status Status
		text   string   // in the message
		fix    []string // exactly these commands
	}{
		{"rss_table", Problem, "queues [2 3], which no worker serves", []string{"ethtool -X eth1 equal 2"}},
		{"rss_symmetric", Problem, `target set "ftp"`, []string{
			"ethtool -X eth1 hkey " + strings.Repeat("6d:5a:", 25) + "6d:5a",
			"ethtool -X eth1 xfrm symmetric-xor   # or this, with Linux and ethtool 6.9+ and driver support"}},
		{"offloads", Problem, "LRO", []string{"ethtool -K eth1 lro off"}},
		{"irq_affinity", Warn, "queue 1: IRQ 127 may run on CPUs 0-7, its worker runs on CPU 3", []string{"echo 3 > /proc/irq/127/smp_affinity_list"}},
		{"napi_defer", Warn, "napi_defer_hard_irqs 0", []string{
			"echo 2 > /sys/class/net/eth1/napi_defer_hard_irqs", "echo 200000 > /sys/class/net/eth1/gro_flush_timeout"}},
		{"queues", Info, "workers on 2 of them", nil},
	} {
		f := finding(t, ifc.Findings, c.check)
		if f.Status != c.status || !strings.Contains(f.Message, c.text) || !slices.Equal(f.Fix, c.fix) {
			t.Errorf("%s = %+v,\nwant status %s, message containing %q, fix %q", c.check, f, c.status, c.text, c.fix)
		}
	}
	// 2 workers x 32 MiB UMEM = 32 pages of 2 MiB; 3 free of 64.
	if f := finding(t, r.Host, "huge_pages"); f.Status != Problem || !slices.Equal(f.Fix, []string{"sysctl -w vm.nr_hugepages=93"}) {
		t.Errorf("huge_pages = %+v, want a problem (huge_pages = on) fixed by vm.nr_hugepages=93", f)
	}
	if f := finding(t, r.Host, "irqbalance"); f.Status != Warn || f.Fix[0] != "systemctl disable --now irqbalance" ||
		!strings.Contains(f.Fix[1], "IRQBALANCE_BANNED_CPULIST=2-3") {
		t.Errorf("irqbalance = %+v, want a warning with the commands that stop it or ban CPUs 2-3", f)
	}
	if r.Problems != 4 || r.Warnings != 3 {
		t.Errorf("Problems, Warnings = %d, %d, want 4, 3", r.Problems, r.Warnings)
	}
}

// TestStartupProblems: settings under which ipfront would not start.
func TestStartupProblems(t *testing.T) {
	h := i40eHost(t)
	spec := i40eSpec()
	spec.Dataplane.Queues = []int{0, 6}
	spec.Dataplane.CPUs = []int{2, 9, 4}
	r := Check(h, spec)
	if f := finding(t, r.Interfaces[0].Findings, "queues"); f.Status != Problem || !slices.Equal(f.Fix, []string{"ethtool -L eth1 combined 7"}) {
		t.Errorf("queues = %+v, want a problem fixed by ethtool -L eth1 combined 7", f)
	}
	if f := finding(t, r.Host, "cpus"); f.Status != Problem || !strings.Contains(f.Message, "3 CPUs for 2 workers") {
		t.Errorf("cpus = %+v, want a problem: 3 CPUs for 2 workers", f)
	}
	spec.Dataplane.CPUs = []int{2, 9}
	if f := finding(t, Check(h, spec).Host, "cpus"); f.Status != Problem || !strings.Contains(f.Message, "[9] are not online") {
		t.Errorf("cpus = %+v, want a problem: CPU 9 is not online", f)
	}

	spec = i40eSpec()
	spec.Dataplane.Interfaces = []string{"eth9"}
	if f := finding(t, Check(h, spec).Interfaces[0].Findings, "interface"); f.Status != Problem {
		t.Errorf("missing interface = %+v, want a problem", f)
	}
}

// TestBusyPollCopyModeIRQs: a busy-polling worker in copy mode wants its
// queue's interrupt on a core of its own, not the worker's.
func TestBusyPollCopyModeIRQs(t *testing.T) {
	h := i40eHost(t)
	spec := i40eSpec()
	spec.Dataplane.BusyPoll = true
	spec.Dataplane.ZeroCopy = config.ZeroCopyOff
	f := finding(t, Check(h, spec).Interfaces[0].Findings, "irq_affinity")
	// Every IRQ is on its worker's CPU: wrong here. The nearest CPU with
	// no worker on the 8-CPU host is 1 for the workers on 2 and 3, 6 for
	// those on 4 and 5.
	want := []string{"echo 1 > /proc/irq/126/smp_affinity_list", "echo 1 > /proc/irq/127/smp_affinity_list",
		"echo 6 > /proc/irq/128/smp_affinity_list", "echo 6 > /proc/irq/129/smp_affinity_list"}
	if f.Status != Warn || !slices.Equal(f.Fix, want) {
		t.Errorf("irq_affinity = %+v, want a warning fixed by %q", f, want)
	}
	if d := finding(t, Check(h, spec).Interfaces[0].Findings, "driver"); d.Status != Warn {
		t.Errorf("driver with zero_copy = off on i40e = %+v, want a warning", d)
	}
}

// TestVethLab runs the check on what a veth end in the lab answers: no RSS,
// no interrupts, copy mode; nothing there is a problem.
func TestVethLab(t *testing.T) {
	h := &fakeHost{
		files: map[string]string{
			"/sys/devices/system/cpu/online":         fixture(t, "lab/cpu-online.txt"),
			"/proc/interrupts":                       fixture(t, "lab/interrupts.txt"),
			"/proc/meminfo":                          "HugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       2048 kB\n",
			"/proc/sys/net/core/busy_poll":           "0\n",
			"/sys/class/net/a0/napi_defer_hard_irqs": "0\n",
			"/sys/class/net/a0/gro_flush_timeout":    "0\n",
		},
		dirs: map[string][]string{"/sys/class/net/a0/queues": {"rx-0", "rx-1", "tx-0", "tx-1"}, "/proc": {}},
		ethtool: map[string]string{
			"-i a0": fixture(t, "veth/ethtool-i.txt"), "-l a0": fixture(t, "veth/ethtool-l.txt"), "-k a0": fixture(t, "veth/ethtool-k.txt"),
		},
		errs: map[string]error{"-x a0": errors.New("ethtool -x a0: " + strings.TrimSpace(fixture(t, "veth/ethtool-x.err")))},
	}
	spec := i40eSpec()
	spec.Dataplane.Interfaces = []string{"a0"}
	spec.Dataplane.CPUs = nil
	r := Check(h, spec)
	fs := r.Interfaces[0].Findings
	for check, want := range map[string]Status{"driver": Info, "queues": OK, "rss": Skip, "irq_affinity": Skip, "offloads": OK, "napi_defer": Warn} {
		if f := finding(t, fs, check); f.Status != want {
			t.Errorf("%s = %+v, want %s", check, f, want)
		}
	}
	if r.Problems != 0 {
		t.Errorf("Problems = %d on the lab's veth, want 0", r.Problems)
	}

	spec.Dataplane.ZeroCopy = config.ZeroCopyOn
	if f := finding(t, Check(h, spec).Interfaces[0].Findings, "driver"); f.Status != Problem || !strings.Contains(f.Message, "veth") {
		t.Errorf(`driver with zero_copy = "on" on veth = %+v, want a problem`, f)
	}
}

// TestVirtioInterrupts: a virtio NIC's vectors are found through the PCI
// parent, in the lab's captured /proc/interrupts: input.0 is queue 0's.
func TestVirtioInterrupts(t *testing.T) {
	h := &fakeHost{
		files: map[string]string{
			"/sys/devices/system/cpu/online": "0-1\n",
			"/proc/interrupts":               fixture(t, "lab/interrupts.txt"),
			"/proc/irq/38/smp_affinity_list": "1\n",
		},
		dirs: map[string][]string{
			"/sys/class/net/ens3/queues":             {"rx-0", "tx-0"},
			"/sys/class/net/ens3/device/../msi_irqs": {"37", "38", "39"},
		},
		ethtool: map[string]string{"-i ens3": "driver: virtio_net\n"},
	}
	spec := i40eSpec()
	spec.Dataplane.Interfaces, spec.Dataplane.CPUs = []string{"ens3"}, []int{0}
	f := finding(t, Check(h, spec).Interfaces[0].Findings, "irq_affinity")
	if f.Status != Warn || !slices.Equal(f.Fix, []string{"echo 0 > /proc/irq/38/smp_affinity_list"}) {
		t.Errorf("irq_affinity = %+v, want IRQ 38 (virtio2-input.0) moved to CPU 0", f)
	}
}

func TestQueueOfIRQ(t *testing.T) {
	for name, want := range map[string]int{
		"i40e-eth1-TxRx-3": 3, "eth1-TxRx-12": 12, "ice-ens1f0-TxRx-0": 0, "mlx5_comp7@pci:0000:3b:00.0": 7,
		"virtio2-input.0": 0, "eth1-rx-2": 2, "enp1s0-3": 3,
	} {
		if q, ok := queueOfIRQ(name); !ok || q != want {
			t.Errorf("queueOfIRQ(%q) = %d, %v, want %d", name, q, ok, want)
		}
	}
	for _, name := range []string{"i40e-0000:3b:00.0:misc", "mlx5_async0@pci:0000:3b:00.0", "virtio2-output.0", "virtio2-config",
		"virtio3-rx", "eth1-tx-0", "mlx5_pages_eq@pci:0000:3b:00.0", "timer"} {
		if q, ok := queueOfIRQ(name); ok {
			t.Errorf("queueOfIRQ(%q) = %d, want no RX queue", name, q)
		}
	}
}

func TestParseInterrupts(t *testing.T) {
	m := parseInterrupts(fixture(t, "lab/interrupts.txt"))
	if m[38].name != "virtio2-input.0" || m[28].name != "virtio0-config" || len(m) != 19 {
		t.Errorf("parseInterrupts(lab) = %d IRQs, 38 %q, 28 %q; want 19, virtio2-input.0, virtio0-config", len(m), m[38].name, m[28].name)
	}
	m = parseInterrupts(fixture(t, "i40e/interrupts.txt"))
	if m[127].name != "i40e-eth1-TxRx-1" || len(m) != 7 {
		t.Errorf("parseInterrupts(i40e) = %d IRQs, 127 %q; want 7, i40e-eth1-TxRx-1", len(m), m[127].name)
	}
}

func TestParseRSS(t *testing.T) {
	r, err := parseRSS(fixture(t, "i40e/ethtool-x.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.table) != 512 || r.table[5] != 1 || len(r.key) != 52 || r.key[0] != 0xe6 || !r.functions["toeplitz"] || r.functions["xor"] {
		t.Errorf("parseRSS(i40e) = table %d entries, key %d bytes, functions %v", len(r.table), len(r.key), r.functions)
	}
	if ok, why := r.symmetric(); ok {
		t.Errorf("i40e's default key symmetric = true (%s), want false", why)
	}
	for _, c := range []struct {
		name string
		r    rss
		want bool
	}{
		{"6d:5a key", rss{key: []byte{0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a}, functions: map[string]bool{"toeplitz": true}}, true},
		{"period 4 bytes", rss{key: []byte{0x6d, 0x5a, 0x11, 0x22, 0x6d, 0x5a, 0x11, 0x22}, functions: map[string]bool{"toeplitz": true}}, false},
		{"xor function", rss{key: []byte{1, 2, 3}, functions: map[string]bool{"toeplitz": false, "xor": true}}, true},
		{"symmetric-xor", rss{key: []byte{1, 2, 3}, functions: map[string]bool{"toeplitz": true}, symmetricXOR: true}, true},
		{"crc32", rss{key: []byte{0x6d, 0x5a}, functions: map[string]bool{"crc32": true}}, false},
	} {
		if got, why := c.r.symmetric(); got != c.want {
			t.Errorf("%s: symmetric() = %v (%s), want %v", c.name, got, why, c.want)
		}
	}
	if _, err := parseRSS(""); err == nil {
		t.Error("parseRSS(\"\") = nil error, want one")
	}
}

func TestParseChannelsAndCPUs(t *testing.T) {
	ch, ok := parseChannels(fixture(t, "i40e/ethtool-l.txt"))
	if !ok || ch.combined != 4 || ch.maxCombined != 64 || ch.rx != 0 {
		t.Errorf("parseChannels(i40e) = %+v, %v", ch, ok)
	}
	ch, ok = parseChannels(fixture(t, "veth/ethtool-l.txt"))
	if !ok || ch.rx != 2 || ch.combined != 0 {
		t.Errorf("parseChannels(veth) = %+v, %v", ch, ok)
	}
	for in, want := range map[string]string{"0-3,8,10-11\n": "0-3,8,10-11", "5": "5", "3,1,2": "1-3", "": ""} {
		cpus, err := parseCPUList(in)
		if err != nil || formatCPUList(cpus) != want {
			t.Errorf("parseCPUList(%q) = %v, %v; formatted %q, want %q", in, cpus, err, formatCPUList(cpus), want)
		}
	}
	for _, bad := range []string{"a", "3-1", "1,,2", "-1"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) = nil error", bad)
		}
	}
	if got := rssWeights("eth1", 4, map[int]bool{0: true, 2: true}); got != "ethtool -X eth1 weight 1 0 1 0" {
		t.Errorf("rssWeights(queues 0, 2 of 4) = %q", got)
	}
}

// TestReportOutput: the text report names every finding and fix; the JSON
// one carries the same.
func TestReportOutput(t *testing.T) {
	h := i40eHost(t)
	h.files["/proc/irq/127/smp_affinity_list"] = "0-7\n"
	r := Check(h, i40eSpec())
	var b bytes.Buffer
	r.WriteText(&b)
	out := b.String()
	for _, want := range []string{"interface eth1 (driver i40e): 4 RX queues, 4 workers",
		"  warn     irq_affinity   queue 1: IRQ 127", "fix: echo 3 > /proc/irq/127/smp_affinity_list", "0 problems, 1 warning"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	f := finding(t, back.Interfaces[0].Findings, "irq_affinity")
	if back.Warnings != 1 || f.Status != Warn || f.Fix[0] != "echo 3 > /proc/irq/127/smp_affinity_list" {
		t.Errorf("JSON round trip: warnings %d, irq_affinity %+v", back.Warnings, f)
	}
	if !strings.Contains(string(j), `"status":"warn"`) || !strings.Contains(string(j), `"rx_queues":4`) {
		t.Errorf("JSON lacks the documented field names: %s", j)
	}
}
