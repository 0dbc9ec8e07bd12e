//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// profile runs ipfront (busy_poll=true, pprof on) under pktgen load and
// records, over the same window: a Go CPU profile from the daemon
// (cpu.pprof), a system-wide perf record with call graphs (perf.data, its
// report perf.txt with Go symbols), and flame graphs rendered from perf's
// stacks: flame.svg (the ipfront process, user and kernel frames) and
// flame-system.svg (everything: generator, bridge, DUT, sinks).
func (h *harness) profile(ctx context.Context) (err error) {
	p := h.p
	lab.RemoveStale()
	t, err := newTopo(lab.UniquePrefix("bench"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, t.close()) }()
	e := &env{t: t, bin: h.bin, out: h.out, logDir: h.logDir}
	c := defaultIPF(true, p.flows())
	c.pprof = true
	ipf, err := e.startIPFront(ctx, "ipfront-profile", c)
	if err != nil {
		return err
	}
	defer ipf.p.stop(10 * time.Second)
	if err := t.sinks(true); err != nil {
		return err
	}
	if _, err := t.placement(placeDUTCore); err != nil {
		return err
	}
	// One pass to create the associations, then load for longer than the
	// recording.
	l := p.ack()
	if _, _, _, err := t.sendGens(ctx, l, 0, uint64(l.flows())); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	genDone := make(chan error, 1)
	go func() {
		_, _, _, err := t.sendGens(gctx, l, p.profileDur+3*time.Second, 0)
		genDone <- err
	}()
	time.Sleep(500 * time.Millisecond)

	secs := int(p.profileDur.Seconds())
	pprofPath := filepath.Join(h.out, "cpu.pprof")
	pprofErr := make(chan error, 1)
	go func() {
		pprofErr <- fetchProfile(ctx, t.lb.ns, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", apiAddr, secs), pprofPath)
	}()
	perfData := filepath.Join(h.out, "perf.data")
	perfErr := error(nil)
	if _, err := exec.LookPath("perf"); err != nil {
		perfErr = errors.New("perf not installed (Debian package linux-perf)")
	} else {
		cmd := exec.CommandContext(ctx, "perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-a", "-o", perfData, "--", "sleep", fmt.Sprint(secs))
		if out, err := cmd.CombinedOutput(); err != nil {
			perfErr = fmt.Errorf("perf record: %v: %s", err, tail(string(out), 500))
		}
	}
	if err := <-pprofErr; err != nil {
		return err
	}
	cancel()
	<-genDone
	c1, _ := e.counters(ctx)
	fmt.Fprintf(os.Stderr, "harness: ipfront forwarded %d packets (%d new associations) while profiled\n", c1.TxPackets, c1.NewAssociations)
	if c1.TxPackets == 0 {
		return errors.New("ipfront forwarded nothing while profiled")
	}
	if perfErr != nil {
		return perfErr
	}
	pid := ipf.p.pid()
	if err := ipf.p.stop(10 * time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
	}
	return h.perfOutputs(perfData, pid)
}

func fetchProfile(ctx context.Context, ns, url, path string) error {
	client := lab.HTTPClient(ns, 2*time.Minute)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("pprof: status %d: %s", resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "harness: wrote %s\n", path)
	return f.Close()
}

// perfOutputs writes perf.txt (report with Go symbols), the folded stacks
// and the flame graphs from perf.data.
func (h *harness) perfOutputs(perfData string, pid int) error {
	var report strings.Builder
	fmt.Fprintf(&report, "# perf record -e cpu-clock -g -a, ipfront (pid %d) under bench/pktgen load; see BENCHMARKS.md for the topology.\n\n", pid)
	for _, args := range [][]string{
		{"--sort", "comm,dso", "--no-children"},
		{"--comm", "ipfront", "--sort", "sym", "--no-children", "--percent-limit", "0.5", "-g", "none"},
		{"--sort", "comm,sym", "--no-children", "--percent-limit", "0.5", "-g", "none"},
	} {
		out, err := output("perf", append([]string{"report", "-i", perfData, "--stdio"}, args...)...)
		if err != nil {
			return err
		}
		fmt.Fprintf(&report, "## perf report %s\n\n%s\n", strings.Join(args, " "), out)
	}
	txt := filepath.Join(h.out, "perf.txt")
	if err := os.WriteFile(txt, []byte(report.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "harness: wrote %s\n", txt)

	script, err := output("perf", "script", "-i", perfData, "-F", "comm,pid,ip,sym")
	if err != nil {
		return err
	}
	all := foldPerf(script, nil)
	mine := foldPerf(script, func(comm string, p int) bool { return p == pid })
	for _, f := range []struct {
		name, title string
		stacks      map[string]int
	}{
		{"flame.svg", fmt.Sprintf("ipfront (pid %d) under pktgen load: perf cpu-clock, user and kernel frames", pid), mine},
		{"flame-system.svg", "whole machine under pktgen load (generator, bridge, ipfront, sinks)", all},
	} {
		if len(f.stacks) == 0 {
			return fmt.Errorf("no samples for %s", f.name)
		}
		path := filepath.Join(h.out, f.name)
		if err := writeFolded(strings.TrimSuffix(path, ".svg")+".folded", f.stacks); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(flameSVG(f.title, f.stacks)), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "harness: wrote %s\n", path)
	}
	return nil
}

// foldPerf turns "perf script -F comm,pid,ip,sym" output into folded stacks
// ("comm;outer;...;inner" -> samples), keeping samples keep accepts (nil:
// all).
func foldPerf(script string, keep func(comm string, pid int) bool) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(script))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var comm string
	var pid int
	var frames []string
	flush := func() {
		if comm != "" && len(frames) > 0 && (keep == nil || keep(comm, pid)) {
			parts := []string{comm}
			for i := len(frames) - 1; i >= 0; i-- {
				parts = append(parts, frames[i])
			}
			out[strings.Join(parts, ";")]++
		}
		comm, frames = "", nil
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			flush()
			// "comm  pid" (comm may contain spaces; pid is the last field)
			f := strings.Fields(line)
			if len(f) >= 2 {
				fmt.Sscan(f[len(f)-1], &pid)
				comm = strings.Join(f[:len(f)-1], " ")
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			frames = append(frames, "[unknown]")
			continue
		}
		sym := strings.Join(f[1:], " ")
		if i := strings.LastIndex(sym, "+0x"); i > 0 {
			sym = sym[:i]
		}
		frames = append(frames, strings.ReplaceAll(sym, ";", ":"))
	}
	flush()
	return out
}

func writeFolded(path string, stacks map[string]int) error {
	keys := make([]string, 0, len(stacks))
	for k := range stacks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d\n", k, stacks[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// flame is a node of the merged call tree.
type flame struct {
	name     string
	value    int
	children map[string]*flame
}

// flameSVG renders folded stacks as a flame graph: the root at the bottom,
// each frame as wide as its samples, children in name order, a tooltip per
// frame with its share of the samples.
func flameSVG(title string, stacks map[string]int) string {
	root := &flame{name: "all", children: map[string]*flame{}}
	depth := 0
	for stack, n := range stacks {
		node := root
		node.value += n
		parts := strings.Split(stack, ";")
		depth = max(depth, len(parts))
		for _, p := range parts {
			c := node.children[p]
			if c == nil {
				c = &flame{name: p, children: map[string]*flame{}}
				node.children[p] = c
			}
			c.value += n
			node = c
		}
	}
	const (
		width  = 1200.0
		rowH   = 16
		top    = 36
		minPix = 0.3
	)
	height := top + (depth+1)*rowH + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="%.0f" height="%d" xmlns="http://www.w3.org/2000/svg" font-family="Verdana, sans-serif" font-size="11">
<rect x="0" y="0" width="100%%" height="100%%" fill="#f8f8f0"/>
<text x="%.0f" y="20" text-anchor="middle" font-size="15">%s</text>
<text x="10" y="32" font-size="10" fill="#555">%d samples; width = share of samples; hover a frame for its name and share. Generated by bench/harness (make profile).</text>
`, width, height, width/2, html.EscapeString(title), root.value)
	var draw func(n *flame, x float64, level int)
	draw = func(n *flame, x float64, level int) {
		w := float64(n.value) / float64(root.value) * (width - 20)
		if w < minPix {
			return
		}
		y := height - 10 - (level+1)*rowH
		pct := 100 * float64(n.value) / float64(root.value)
		fmt.Fprintf(&b, `<g><title>%s (%d samples, %.2f%%)</title><rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" rx="2"/>`,
			html.EscapeString(n.name), n.value, pct, x, y, w, rowH-1, color(n.name))
		if w > 30 {
			label := n.name
			if max := int(w / 7); len(label) > max {
				label = label[:max-2] + ".."
			}
			fmt.Fprintf(&b, `<text x="%.2f" y="%d">%s</text>`, x+3, y+rowH-4, html.EscapeString(label))
		}
		b.WriteString("</g>\n")
		names := make([]string, 0, len(n.children))
		for k := range n.children {
			names = append(names, k)
		}
		sort.Strings(names)
		cx := x
		for _, k := range names {
			c := n.children[k]
			draw(c, cx, level+1)
			cx += float64(c.value) / float64(root.value) * (width - 20)
		}
	}
	draw(root, 10, 0)
	b.WriteString("</svg>\n")
	return b.String()
}

// color picks a warm colour per name; kernel frames (no package dot, or
// well-known kernel prefixes) are drawn in orange, Go frames in yellow-red.
func color(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32()
	if !strings.Contains(name, ".") || strings.HasPrefix(name, "__") {
		return fmt.Sprintf("rgb(%d,%d,%d)", 230+v%25, 120+v%80, 40+v%30)
	}
	return fmt.Sprintf("rgb(%d,%d,%d)", 200+v%55, 80+v%120, 30+v%40)
}
