//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/internal/lab"
)

func upCmd(args []string, log zerolog.Logger) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	prefix := fs.String("prefix", "demo", "namespace name prefix")
	servers := fs.Int("servers", 3, "number of servers")
	vips := fs.String("vips", lab.DefaultVIP4.String()+","+lab.DefaultVIP6.String(), "VIPs, comma-separated")
	serve := fs.Bool("serve", false, `also start "iplab serve" on every server (TCP and UDP 7000-7010), logging to `+os.TempDir()+`/iplab-<namespace>.log`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	addrs, err := parseAddrs(*vips)
	if err != nil {
		return fmt.Errorf("--vips: %w", err)
	}
	l, err := lab.New(*prefix, *servers, lab.WithVIPs(addrs...))
	if errors.Is(err, lab.ErrExists) {
		return fmt.Errorf("%w (remove it with: iplab down --prefix %s)", err, *prefix)
	}
	if err != nil {
		return err
	}
	if *serve {
		if err := serveDetached(l); err != nil {
			l.Close()
			return err
		}
	}
	printLab(os.Stdout, l)
	log.Info().Str("prefix", *prefix).Bool("servers_running", *serve).Msg("lab up; tear down with: iplab down --prefix " + *prefix)
	return nil
}

func downCmd(args []string, log zerolog.Logger) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	prefix := fs.String("prefix", "demo", "namespace name prefix given to iplab up")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	found, err := lab.Remove(*prefix)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no lab with prefix %q", *prefix)
	}
	log.Info().Str("prefix", *prefix).Msg("lab removed")
	return nil
}

// serveDetached starts "iplab serve" on every server in its own session, so
// it outlives this process; iplab down kills it with the namespaces.
func serveDetached(l *lab.Lab) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, s := range l.Servers() {
		path := filepath.Join(os.TempDir(), "iplab-"+s.NS+".log")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		cmd := exec.Command("ip", "netns", "exec", s.NS, self, "serve", "--name", s.Role)
		cmd.Stdout, cmd.Stderr = f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = cmd.Start()
		f.Close()
		if err != nil {
			return fmt.Errorf("start server %s: %w", s.Role, err)
		}
		_ = cmd.Process.Release()
	}
	return nil
}

func printLab(w io.Writer, l *lab.Lab) {
	fmt.Fprintf(w, "lab %s: bridge %s in namespace %s\n", l.Prefix(), lab.BridgeName, l.Switch())
	fmt.Fprintf(w, "  %-4s %-22s %-8s %-15s %-18s %s\n", "role", "namespace", "link", "IPv4", "IPv6", "MAC")
	for _, h := range l.Hosts() {
		fmt.Fprintf(w, "  %-4s %-22s %-8s %-15s %-18s %s\n", h.Role, h.NS, h.Ifname, h.IPv4, h.IPv6, h.MAC)
	}
	var vips []string
	for _, v := range l.VIPs() {
		vips = append(vips, v.String())
	}
	fmt.Fprintf(w, "VIPs %s: on the servers' lo; the client routes them via the load balancer\n", strings.Join(vips, ", "))
	fmt.Fprintf(w, "run ipfront:   ip netns exec %s ipfront run --config configs/demo.toml\n", l.LB().NS)
	fmt.Fprintf(w, "drive traffic: ip netns exec %s iplab tcp --vip %s\n", l.Client().NS, l.VIPs()[0])
	fmt.Fprintf(w, "tear down:     iplab down --prefix %s\n", l.Prefix())
}

func parseAddrs(s string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for f := range strings.SplitSeq(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}
