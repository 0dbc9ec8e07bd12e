package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/hostcheck"
)

// hostFlag reports whether check's arguments ask for the host check.
func hostFlag(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "--host" || a == "-host" || a == "--host=true" || a == "-host=true" })
}

// checkHost is `ipfront check --host [--json] --config FILE`: the
// configuration is validated first, then the host is checked for its
// [dataplane] (see package hostcheck). It prints the report and fails when
// the host has problems. It reads the network namespace it runs in (use ip
// netns exec for another).
func checkHost(args []string, out io.Writer, src hostcheck.Source) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := fs.String("config", "/etc/ipfront/ipfront.toml", "configuration file")
	fs.Bool("host", true, "check the host for the configuration's [dataplane]")
	asJSON := fs.Bool("json", false, "print the host report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("ipfront check: unexpected argument %q", fs.Arg(0))
	}
	spec, err := config.Load(*path)
	if err != nil {
		return err
	}
	rep := hostcheck.Check(src, spec)
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(out)
	}
	if rep.Problems > 0 {
		return fmt.Errorf("ipfront check --host: %d problem(s) on this host for %s", rep.Problems, *path)
	}
	return nil
}
