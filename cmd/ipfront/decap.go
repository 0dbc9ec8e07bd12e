//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ipfront/ipfront/fastpath/decap"
)

const decapUsage = `usage: ipfront decap attach --dev IF --mode ipip|gue [--port N] [--xdp-mode auto|native|generic]
       ipfront decap detach --dev IF
       ipfront decap status --dev IF

On a server behind an ipfront with forwarding = "ipip" or "gue", strips the
outer headers of the frames ipfront sends and hands the client's packet to
the kernel, for kernels without the ipip, ip6tnl or fou modules. The server
still holds the VIP on a loopback interface and answers clients directly.
The program stays attached after this command exits, until detach.
--port is GUE's UDP port (the target set's gue_port, default 6080).
`

// errDecapUsage is returned for a command line decap cannot follow.
var errDecapUsage = errors.New("ipfront decap: invalid arguments")

// decapCmd runs `ipfront decap`.
func decapCmd(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(out, decapUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: attach, detach or status", errDecapUsage)
		}
		return nil
	}
	fs := flag.NewFlagSet("ipfront decap "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	dev := fs.String("dev", "", "the server's interface the encapsulated frames arrive on")
	mode := fs.String("mode", "", "ipip or gue (attach)")
	port := fs.Uint("port", decap.DefaultGUEPort, "GUE's UDP destination port (attach --mode gue)")
	xdpMode := fs.String("xdp-mode", "auto", "XDP hook: auto (native, else generic), native or generic (attach)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %w", errDecapUsage, err)
	}
	if *dev == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: --dev IF is required, and nothing after the flags", errDecapUsage)
	}
	switch args[0] {
	case "attach":
		m, err := decap.ParseMode(*mode)
		if err != nil {
			return fmt.Errorf("%w: --mode: %w", errDecapUsage, err)
		}
		if *port == 0 || *port > 65535 {
			return fmt.Errorf("%w: --port %d is not 1..65535", errDecapUsage, *port)
		}
		am, err := decap.ParseAttachMode(*xdpMode)
		if err != nil {
			return fmt.Errorf("%w: --xdp-mode: %w", errDecapUsage, err)
		}
		used, err := decap.Attach(*dev, decap.Config{Mode: m, Port: uint16(*port)}, am)
		if err != nil {
			return err
		}
		if m == decap.ModeGUE {
			fmt.Fprintf(out, "decapsulating gue (udp port %d) on %s (%s XDP)\n", *port, *dev, used)
		} else {
			fmt.Fprintf(out, "decapsulating ipip on %s (%s XDP)\n", *dev, used)
		}
	case "detach":
		ok, err := decap.Detach(*dev)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintf(out, "no decapsulation program on %s\n", *dev)
			return nil
		}
		fmt.Fprintf(out, "detached from %s\n", *dev)
	case "status":
		c, ok, err := decap.Status(*dev)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintf(out, "no decapsulation program on %s\n", *dev)
			return nil
		}
		fmt.Fprintf(out, "%s: decapsulated %d, passed %d, failed %d\n", *dev,
			c[decap.CtrDecapsulated], c[decap.CtrPassed], c[decap.CtrFailed])
	default:
		return fmt.Errorf("%w: unknown subcommand %q (attach, detach or status)", errDecapUsage, args[0])
	}
	return nil
}
