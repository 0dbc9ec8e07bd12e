package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// topOpts are the flags of "ctl top".
type topOpts struct {
	interval time.Duration
	frames   int // 0: until q or Ctrl-C
}

// topFlags adds top's flags to its flag set.
func topFlags(fs *flag.FlagSet, o *topOpts) {
	fs.DurationVar(&o.interval, "interval", time.Second, "refresh interval")
	fs.IntVar(&o.frames, "n", 0, "print this many screens and exit (0: until q or Ctrl-C)")
}

// Terminal control: home the cursor and clear the screen before each
// frame; hide the cursor while top runs.
const (
	ansiClear      = "\x1b[H\x1b[2J"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
)

// runTop is "ipfront ctl top": one screen of the daemon's state, redrawn
// every interval (like `ipvsadm -L --rate` in a loop): the daemon's
// readiness and table generation, its workers (rates, drops per second,
// associations against capacity, unproven, table-full), its servers (state,
// weights, associations, rates, share) and the active alarms. q (or Q)
// and Ctrl-C leave it, restoring the terminal; with -n it prints that many
// screens and exits, for scripts and logs (failing if the last one could
// not be fetched). A refresh that fails (daemon
// restarting) shows the error on the screen and top keeps trying.
func runTop(o *ctlOpts, c *ctlClient, stdin *os.File) error {
	if o.top.interval <= 0 {
		return fmt.Errorf("ipfront ctl top: --interval %v: want a positive duration", o.top.interval)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	interactive := o.top.frames == 0
	if interactive {
		// Keys arrive one by one (no Enter needed) and are not echoed;
		// Ctrl-C still raises SIGINT. Restored however top ends.
		if restore, err := cbreak(stdin); err == nil {
			defer restore()
		}
		quit := make(chan struct{})
		go readQuit(stdin, quit)
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-quit:
				cancel()
			case <-ctx2.Done():
			}
		}()
		ctx = ctx2
		fmt.Fprint(o.stdout, ansiHideCursor)
		defer fmt.Fprint(o.stdout, ansiShowCursor)
	}
	var prev *topSample
	tick := time.NewTicker(o.top.interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		cur := fetchTop(ctx, c, o.top.interval)
		if ctx.Err() != nil {
			return nil // q or Ctrl-C while fetching
		}
		var frame bytes.Buffer
		if interactive {
			frame.WriteString(ansiClear)
		}
		renderTop(&frame, c.addr, cur, prev, interactive)
		if _, err := o.stdout.Write(frame.Bytes()); err != nil {
			return err
		}
		if cur.err == nil {
			prev = cur
		}
		if o.top.frames > 0 && n+1 >= o.top.frames {
			return cur.err // a script learns that the last screen had no data
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// readQuit closes quit when q or Q is read from in; it returns on EOF or a
// read error without closing it (stdin at /dev/null must not end top).
func readQuit(in io.Reader, quit chan<- struct{}) {
	buf := make([]byte, 16)
	for {
		n, err := in.Read(buf)
		if bytes.ContainsAny(buf[:n], "qQ") {
			close(quit)
			return
		}
		if err != nil {
			return
		}
	}
}

// cbreak switches the terminal on f to character-at-a-time input without
// echo, keeping signals, and returns the function that restores it. It
// fails when f is not a terminal (input piped in), which top tolerates.
// The ioctls go through package syscall: ctl stays free of x/sys.
func cbreak(f *os.File) (restore func(), err error) {
	var old syscall.Termios
	fd := f.Fd()
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&old))); e != 0 {
		return nil, e
	}
	raw := old
	raw.Lflag &^= syscall.ICANON | syscall.ECHO
	raw.Cc[syscall.VMIN], raw.Cc[syscall.VTIME] = 1, 0
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&raw))); e != 0 {
		return nil, e
	}
	return func() { syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&old))) }, nil
}

// topSample is one refresh: the replies top shows, and when it got them.
type topSample struct {
	at       time.Time
	status   v1.Status
	servers  v1.Servers
	counters v1.Counters
	alarms   v1.Alarms
	err      error
}

// fetchTop reads everything one screen shows, each request bounded by the
// refresh interval (at least a second) so a stuck daemon cannot freeze
// top's keys.
func fetchTop(ctx context.Context, c *ctlClient, interval time.Duration) *topSample {
	s := &topSample{at: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, max(interval, time.Second))
	defer cancel()
	get := func(path string, v any, ok ...int) {
		if s.err != nil {
			return
		}
		r := c.call(ctx, http.MethodGet, path, nil, ok...)
		if r.err != nil {
			s.err = r.err
			return
		}
		if err := json.Unmarshal(r.body, v); err != nil {
			s.err = fmt.Errorf("unreadable reply from %s: %w", path, err)
		}
	}
	get("/v1/status", &s.status, http.StatusServiceUnavailable)
	get("/v1/servers", &s.servers)
	get("/v1/counters", &s.counters)
	get("/v1/alarms", &s.alarms)
	return s
}

// renderTop lays out one screen. Drops per second need two samples: the
// first screen shows "-".
func renderTop(w io.Writer, addr string, cur, prev *topSample, interactive bool) {
	head := fmt.Sprintf("ipfront top  %s  %s", addr, cur.at.Format("15:04:05"))
	if interactive {
		head += "  (q quits)"
	}
	fmt.Fprintln(w, head)
	if cur.err != nil {
		fmt.Fprintf(w, "\n%v\nretrying every refresh...\n", cur.err)
		return
	}
	st := cur.status
	ready := "ready"
	if !st.Ready {
		ready = "STARTING"
	}
	var rxPPS, txPPS float64
	for _, wk := range st.Workers {
		rxPPS, txPPS = rxPPS+wk.RxPPS, txPPS+wk.TxPPS
	}
	fmt.Fprintf(w, "%s  generation %d  workers %d  rx %s pps  tx %s pps  associations %d  dropped %d\n\n",
		ready, st.Generation, len(st.Workers), human(rxPPS), human(txPPS), cur.counters.Associations, cur.counters.Dropped)

	dropped := map[string]uint64{}
	for _, wc := range cur.counters.Workers {
		dropped[wc.Name] = wc.Dropped
	}
	prevDropped := map[string]uint64{}
	var dt float64
	if prev != nil {
		dt = cur.at.Sub(prev.at).Seconds()
		for _, wc := range prev.counters.Workers {
			prevDropped[wc.Name] = wc.Dropped
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tCPU\tRX PPS\tTX PPS\tDROPS/S\tASSOCIATIONS\tUNPROVEN\tTABLE")
	for _, wk := range st.Workers {
		drops := "-"
		if p, ok := prevDropped[wk.Name]; ok && dt > 0 && dropped[wk.Name] >= p {
			drops = human(float64(dropped[wk.Name]-p) / dt)
		}
		table := "ok"
		if wk.TableFull {
			table = "FULL"
		}
		cpu := "-"
		if wk.CPU >= 0 {
			cpu = fmt.Sprint(wk.CPU)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d (%.0f%%)\t%d/%d\t%s\n", wk.Name, cpu, human(wk.RxPPS), human(wk.TxPPS), drops,
			wk.Associations, wk.Capacity, share(wk.Associations, wk.Capacity), wk.Unproven, wk.UnprovenLimit, table)
	}
	tw.Flush()
	fmt.Fprintln(w)

	servers := append([]v1.ServerStats(nil), cur.servers.Servers...)
	sort.SliceStable(servers, func(i, j int) bool { return servers[i].Set < servers[j].Set })
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tSERVER\tADDRESS\tSTATE\tWEIGHT\tEFFECTIVE\tASSOCIATIONS\tPPS\tBIT/S\tSHARE")
	for _, s := range servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%.1f%%\n", s.Set, s.Name, s.Address, serverState(&s.Server),
			s.Weight, s.EffectiveWeight, s.Associations, human(s.PPS), human(s.BPS), 100*s.Share)
	}
	tw.Flush()

	var active []string
	for _, a := range cur.alarms.Alarms {
		if !a.Active {
			continue
		}
		switch a.Kind {
		case v1.AlarmTableFull:
			active = append(active, fmt.Sprintf("%s: table full on worker %s since %s", a.ID, a.Worker, a.Raised.Format("15:04:05")))
		default:
			active = append(active, fmt.Sprintf("%s: balance of set %s off by %.1f%% since %s", a.ID, a.Set, 100*a.Deviation, a.Raised.Format("15:04:05")))
		}
	}
	if len(active) > 0 {
		fmt.Fprintf(w, "\nALARMS\n%s\n", strings.Join(active, "\n"))
	}
}

func share(n, of int) float64 {
	if of <= 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// human prints a rate with an SI prefix: 950, 12.3k, 4.56M, 1.2G.
func human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
