// Command ipfront is the ipfront daemon and its tools: "ipfront run" runs the
// load balancer, "ipfront check" validates a configuration file, "ipfront
// ctl" talks to a running daemon's API, "ipfront version" says which build
// this is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/cmd/ipfront/internal/ctl"
	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/internal/version"
	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/hostcheck"
)

const usage = `usage: ipfront <command> [flags]

commands:
  run   --config FILE   run the load balancer (SIGHUP re-reads FILE)
  check --config FILE   validate a configuration file and exit
  check --host [--json] --config FILE
                        also check this host for its [dataplane]: NIC queues, RSS,
                        IRQ affinity, offloads, NAPI, huge pages (exit 1 on problems)
  ctl   [flags] CMD     query and steer a running daemon ("ipfront ctl -h")
  decap attach|detach|status --dev IF [--mode ipip|gue] [--port N]
                        on a server: strip ipfront's IPIP/GUE headers with an XDP
                        program, for kernels without ipip/fou ("ipfront decap -h")
  version               print the module version and VCS revision (also --version)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "check":
		err = check(os.Args[2:], os.Stdout)
	case "ctl":
		err = ctl.Run(os.Args[2:], os.Stdout, os.Stderr)
	case "decap":
		err = decapCmd(os.Args[2:], os.Stdout) // decap.go
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	case "version", "--version", "-version":
		info, _ := debug.ReadBuildInfo()
		fmt.Println(versionLine(info))
		return
	default:
		fmt.Fprintf(os.Stderr, "ipfront: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func configFlag(name string, args []string) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "/etc/ipfront/ipfront.toml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("ipfront %s: unexpected argument %q", name, fs.Arg(0))
	}
	return *path, nil
}

// check prints every problem of a configuration with its file:line:column.
func check(args []string, out io.Writer) error {
	if hostFlag(args) {
		return checkHost(args, out, hostcheck.System{}) // hostcheck.go
	}
	path, err := configFlag("check", args)
	if err != nil {
		return err
	}
	// Against this machine too: queues and memory (interfaces it lacks are
	// not checked).
	spec, err := config.LoadOn(path, config.ThisHost())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: ok (%d target sets)\n", path, len(spec.TargetSets))
	for _, w := range spec.Warnings {
		fmt.Fprintln(out, w)
	}
	return nil
}

func newLogger(l config.Log) zerolog.Logger {
	var w io.Writer = os.Stderr
	if l.Format == "console" {
		// Colour only for a terminal: logs piped to a file or journal stay
		// plain text.
		_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
		w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339, NoColor: err != nil}
	}
	level, err := zerolog.ParseLevel(l.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

func run(args []string) error {
	// Catch SIGHUP before anything else: its default action would kill a
	// daemon that is still starting. Reloads queue until Run serves them.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	path, err := configFlag("run", args)
	if err != nil {
		return err
	}
	// Checked against this machine (RX queues, memory) before anything is
	// mapped or attached.
	spec, err := config.LoadOn(path, config.ThisHost())
	if err != nil {
		return err
	}
	log := newLogger(spec.Log)
	log.Info().Str("config", path).Int("target_sets", len(spec.TargetSets)).Msg("starting")
	for _, w := range spec.Warnings {
		log.Warn().Str("config", path).Msg(w.Error())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := func(dp *config.Dataplane) (slowpath.DataPlane, error) {
		return startDataplane(dp, spec.HA.Enabled, log)
	}
	d := slowpath.NewDaemon(spec, log, slowpath.DaemonOptions{Start: start})
	api, err := slowpath.Listen(d, spec.API)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", spec.API.Listen, err)
	}
	go func() {
		if err := api.Serve(); err != nil {
			log.Error().Err(err).Msg("api")
		}
	}()
	defer api.Shutdown()
	log.Info().Str("listen", api.Addr().String()).Msg("api listening")
	go func() {
		for range hup {
			// Errors and keys not applied are logged by Reload.
			_, _ = d.Reload(ctx)
		}
	}()
	// Under systemd (Type=notify, packaging/ipfront.service): ready once
	// the daemon serves, stopping once asked to stop (sdnotify.go).
	notify := func(state ...string) {
		if err := sdNotify(state...); err != nil {
			log.Warn().Err(err).Msg("systemd notification")
		}
	}
	context.AfterFunc(ctx, func() { notify("STOPPING=1") })
	err = d.Run(ctx, func() { notify("READY=1", fmt.Sprintf("STATUS=serving, generation %d", d.Generation())) })
	if p := d.Plane(); p != nil {
		c := slowpath.CountersOf(p)
		log.Info().Uint64("rx_packets", c.RxPackets).Uint64("tx_packets", c.TxPackets).Uint64("dropped", c.Dropped).
			Uint64("new_associations", c.NewAssociations).Msg("final counters")
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// startDataplane starts the AF_XDP data plane a [dataplane] table describes.
// The daemon gets it as its start function: slowpath itself knows neither
// sockets nor steering programs.
func startDataplane(dp *config.Dataplane, replicate bool, log zerolog.Logger) (slowpath.DataPlane, error) {
	cfg := dataplaneConfig(dp)
	cfg.Replicate = replicate // [ha]: the workers report association changes
	d, err := fastpath.Start(cfg)
	if err != nil {
		if missing := ownMissingCaps(); len(missing) > 0 { // caps.go
			err = fmt.Errorf("%w (this process lacks %s; packaging/ipfront.service grants what the data plane needs)",
				err, strings.Join(missing, ", "))
		}
		return nil, err
	}
	logSockets(log, d.SocketReports()) // dataplane_log.go
	return slowpath.FastPlane(d), nil
}

// dataplaneConfig translates the spec's [dataplane] table for the fast path.
func dataplaneConfig(dp *config.Dataplane) fastpath.Config {
	mode := map[config.XDPMode]steer.XDPMode{config.XDPAuto: steer.ModeAuto, config.XDPNative: steer.ModeNative, config.XDPGeneric: steer.ModeGeneric}[dp.XDPMode]
	sock := map[string]xsk.Mode{config.ZeroCopyAuto: xsk.ModeAuto, config.ZeroCopyOn: xsk.ModeZeroCopy, config.ZeroCopyOff: xsk.ModeCopy}[dp.ZeroCopy]
	return fastpath.Config{
		Interfaces: dp.Interfaces, Queues: dp.Queues, CPUs: dp.CPUs, XDPMode: mode,
		BusyPoll: dp.BusyPoll, BatchSize: dp.BatchSize,
		MaxAssociations: dp.MaxAssociations, MaxPersistenceRecords: dp.MaxPersistenceRecords,
		RingSize: uint32(dp.RingSize), FrameSize: uint32(dp.FrameSize), Frames: uint32(dp.Frames),
		NeedWakeup: dp.NeedWakeup, SocketMode: sock, ShedOpenings: dp.ShedOpenings,
		IdleSpin: dp.IdleSpin, PreferBusyPoll: dp.PreferBusyPoll, HugePages: hugePages(dp.HugePages),
	}
}

// versionLine says which build this is: the main module's version (a tag,
// a pseudo-version, or "(devel)" for a build from a work tree) and, when the
// go command stamped it, the VCS revision, its time and whether the tree had
// local changes.
func versionLine(info *debug.BuildInfo) string {
	if info == nil {
		return "ipfront (no build information)"
	}
	v := info.Main.Version
	if version.Version != "" { // stamped by make package / make install
		v = version.Version
	}
	if v == "" {
		v = "(devel)"
	}
	line := "ipfront " + v
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	switch {
	case rev == "":
		line += " (no VCS revision)"
	case modified == "true":
		line += " revision " + rev + " (modified)"
	default:
		line += " revision " + rev
	}
	if at != "" {
		line += " " + at
	}
	return line + " " + info.GoVersion
}
