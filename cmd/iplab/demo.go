//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/internal/lab"
	"github.com/ipfront/ipfront/slowpath/config"
)

type demoOptions struct {
	config       string
	ipfront      string
	conns        int
	parallel     int
	bytes        int
	udpFlows     int
	udpPackets   int
	readyTimeout time.Duration
}

func demoCmd(args []string, log zerolog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o demoOptions
	fs.StringVar(&o.config, "config", "configs/demo.toml", "ipfront configuration; its servers must be lab addresses (198.51.100.11.. or 2001:db8:100::11..)")
	fs.StringVar(&o.ipfront, "ipfront", "bin/ipfront", "ipfront binary")
	fs.IntVar(&o.conns, "conns", 300, "TCP connections through the VIP")
	fs.IntVar(&o.parallel, "parallel", 16, "TCP connections open at once")
	fs.IntVar(&o.bytes, "bytes", 4096, "bytes echoed and verified per TCP connection")
	fs.IntVar(&o.udpFlows, "udp-flows", 20, "UDP flows through the VIP (0: no UDP run)")
	fs.IntVar(&o.udpPackets, "udp-packets", 5, "datagrams per UDP flow")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 30*time.Second, "how long to wait for ipfront to report ready")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runDemo(ctx, o, log)
	if ctx.Err() != nil {
		return errors.New("interrupted; lab torn down")
	}
	return err
}

// demoPlan is what the demo takes from the configuration.
type demoPlan struct {
	tcpSet, udpSet *config.TargetSet // IPv4 sets with TCP and UDP; udpSet may be nil
	servers        int               // lab servers needed
	roles          map[netip.Addr]string
	vips           []netip.Addr
	serverPorts    string // iplab serve --tcp/--udp
	apiURL         string
}

func plan(spec *config.Spec) (*demoPlan, error) {
	p := &demoPlan{roles: map[netip.Addr]string{}}
	for i := range spec.TargetSets {
		ts := &spec.TargetSets[i]
		if !slices.Contains(p.vips, ts.Address) {
			p.vips = append(p.vips, ts.Address)
		}
		for _, s := range ts.Servers {
			n := labServer(s.Address)
			if n == 0 {
				return nil, fmt.Errorf("target set %s: server %s is not a lab server address (%s.. or %s..)",
					ts.Name, s.Address, lab.ServerIPv4(1), lab.ServerIPv6(1))
			}
			p.servers = max(p.servers, n)
			p.roles[s.Address] = "s" + strconv.Itoa(n)
		}
		if ts.Address.Is4() && p.tcpSet == nil && slices.Contains(ts.Protocols, config.ProtoTCP) {
			p.tcpSet = ts
		}
		if ts.Address.Is4() && p.udpSet == nil && slices.Contains(ts.Protocols, config.ProtoUDP) {
			p.udpSet = ts
		}
	}
	if p.tcpSet == nil {
		return nil, errors.New("the demo needs a target set with an IPv4 address and TCP")
	}
	var ranges []string
	nports := 0
	for _, r := range p.tcpSet.Ports {
		ranges = append(ranges, r.String())
		nports += int(r.Last-r.First) + 1
	}
	p.serverPorts = strings.Join(ranges, ",")
	if nports > 64 {
		p.serverPorts = strconv.Itoa(int(demoPort(p.tcpSet)))
	}
	if strings.HasPrefix(spec.API.Listen, "unix:") {
		return nil, errors.New("the demo reaches ipfront's API over TCP: [api] listen must be host:port")
	}
	if spec.API.Token != "" {
		return nil, errors.New("the demo does not send API tokens: leave [api] token empty (the API listens on loopback)")
	}
	p.apiURL = "http://" + spec.API.Listen
	return p, nil
}

// labServer returns i if a is lab server i's address, else 0.
func labServer(a netip.Addr) int {
	for i := 1; i <= lab.MaxServers; i++ {
		if a == lab.ServerIPv4(i) || a == lab.ServerIPv6(i) {
			return i
		}
	}
	return 0
}

// demoPort is the port the clients use: the set's first port ("*": 7000).
func demoPort(ts *config.TargetSet) uint16 {
	if ts.Ports[0].First == 1 && ts.Ports[0].Last == 65535 {
		return 7000
	}
	return ts.Ports[0].First
}

func runDemo(ctx context.Context, o demoOptions, log zerolog.Logger) (err error) {
	spec, err := config.Load(o.config)
	if err != nil {
		return err
	}
	p, err := plan(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", o.config, err)
	}
	if !slices.Contains(spec.Dataplane.Interfaces, lab.LBIfname) {
		log.Warn().Strs("interfaces", spec.Dataplane.Interfaces).Msg("the lab's load balancer interface is " + lab.LBIfname)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ipfront, err := filepath.Abs(o.ipfront)
	if err != nil {
		return err
	}
	if _, err := os.Stat(ipfront); err != nil {
		return fmt.Errorf("ipfront binary: %w (build it with make build)", err)
	}
	cfgPath, err := filepath.Abs(o.config)
	if err != nil {
		return err
	}

	start := time.Now()
	l, err := lab.New(lab.UniquePrefix("demo"), p.servers, lab.WithVIPs(p.vips...))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			log.Error().Err(cerr).Msg("tear down")
			err = errors.Join(err, cerr)
		} else {
			log.Info().Str("prefix", l.Prefix()).Msg("lab torn down")
		}
	}()
	log.Info().Str("prefix", l.Prefix()).Int("servers", p.servers).Stringer("took", time.Since(start).Round(time.Millisecond)).Msg("lab up")

	var mu sync.Mutex
	out := func(name string) io.Writer {
		return &lab.PrefixWriter{W: os.Stderr, Prefix: fmt.Sprintf("%-7s | ", name), Mu: &mu}
	}
	servers, err := l.StartServers(ctx, self, p.serverPorts, p.serverPorts, out)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range servers {
			if serr := s.Stop(2 * time.Second); serr != nil {
				log.Warn().Err(serr).Msg("server stop")
			}
		}
	}()
	log.Info().Str("ports", p.serverPorts).Msg("servers ready")

	ipf, err := l.StartProc(l.LB().NS, "ipfront", out("ipfront"), ipfront, "run", "--config", cfgPath)
	if err != nil {
		return err
	}
	ipfStopped := false
	defer func() {
		if !ipfStopped {
			_ = ipf.Stop(5 * time.Second)
		}
	}()
	readyCtx, cancel := context.WithTimeout(ctx, o.readyTimeout)
	t0 := time.Now()
	err = lab.WaitReady(readyCtx, l.LB().NS, p.apiURL+"/v1/status", ipf.Done())
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("not ready after %v: %w", o.readyTimeout, err)
		} else if ipf.Err() != nil || isDone(ipf.Done()) {
			err = fmt.Errorf("%w: %v", err, ipf.Err())
		}
		return fmt.Errorf("ipfront: %w", err)
	}
	log.Info().Stringer("took", time.Since(t0).Round(time.Millisecond)).Msg("ipfront ready")

	failed := false
	port := demoPort(p.tcpSet)
	var tcp lab.TCPReport
	if err := runClient(ctx, l, self, out("client"), &tcp, "tcp", "--vip", p.tcpSet.Address.String(),
		"--port", strconv.Itoa(int(port)), "--conns", strconv.Itoa(o.conns), "--parallel", strconv.Itoa(o.parallel),
		"--bytes", strconv.Itoa(o.bytes)); err != nil {
		return err
	}
	fmt.Println()
	printTCP(os.Stdout, &tcp, false)
	fmt.Println()
	printSpread(os.Stdout, p, &tcp)
	failed = failed || tcp.Failed > 0 || tcp.DuplicateSourcePorts > 0

	if p.udpSet != nil && o.udpFlows > 0 {
		var udp lab.UDPReport
		if err := runClient(ctx, l, self, out("client"), &udp, "udp", "--vip", p.udpSet.Address.String(),
			"--port", strconv.Itoa(int(demoPort(p.udpSet))), "--flows", strconv.Itoa(o.udpFlows),
			"--packets", strconv.Itoa(o.udpPackets)); err != nil {
			return err
		}
		fmt.Println()
		printUDP(os.Stdout, &udp)
		failed = failed || udp.Failed()
	}

	// ipfront's own view, through its CLI, as an operator would look.
	for _, cmd := range [][]string{{"servers"}, {"counters"}} {
		args := append([]string{ipfront, "ctl", "--api", spec.API.Listen}, cmd...)
		text, err := l.Exec(l.LB().NS, args...)
		if err != nil {
			return fmt.Errorf("ipfront ctl %s: %w", cmd[0], err)
		}
		fmt.Printf("\n$ ipfront ctl %s\n%s", strings.Join(cmd, " "), text)
	}
	fmt.Println()

	ipfStopped = true
	if err := ipf.Stop(10 * time.Second); err != nil {
		log.Error().Err(err).Msg("ipfront did not exit cleanly on SIGTERM")
		failed = true
	} else {
		log.Info().Msg("ipfront stopped")
	}
	if failed {
		return errFailed
	}
	return nil
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// runClient runs "iplab <args> -o json" in the client's namespace and
// decodes its report into r. A run that reports failures is not an error
// here: the report says what failed.
func runClient(ctx context.Context, l *lab.Lab, self string, stderr io.Writer, r any, args ...string) error {
	cmd := l.CommandContext(ctx, l.Client().NS, append(append([]string{self}, args...), "-o", "json")...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	runErr := cmd.Run()
	if err := json.Unmarshal(stdout.Bytes(), r); err != nil {
		return fmt.Errorf("iplab %s: %v (report unreadable: %v)", args[0], runErr, err)
	}
	return nil
}

// printSpread prints the TCP connections per server next to the share the
// weights ask for.
func printSpread(w io.Writer, p *demoPlan, r *lab.TCPReport) {
	total, weights := 0, 0
	for _, n := range r.Servers {
		total += n
	}
	for _, s := range p.tcpSet.Servers {
		weights += s.Weight
	}
	fmt.Fprintf(w, "%-6s %-16s %6s %12s %7s %9s\n", "server", "address", "weight", "connections", "share", "expected")
	for _, s := range p.tcpSet.Servers {
		role := p.roles[s.Address]
		n := r.Servers[role]
		fmt.Fprintf(w, "%-6s %-16s %6d %12d %6.1f%% %8.1f%%\n", role, s.Address, s.Weight, n,
			100*float64(n)/float64(max(total, 1)), 100*float64(s.Weight)/float64(max(weights, 1)))
	}
	for name, n := range r.Servers {
		if !slices.ContainsFunc(p.tcpSet.Servers, func(s config.Server) bool { return p.roles[s.Address] == name }) {
			fmt.Fprintf(w, "%-6s %-16s %6s %12d   (not in the target set)\n", name, "?", "-", n)
		}
	}
	fmt.Fprintf(w, "%-6s %-16s %6d %12d\n", "total", "", weights, total)
}
