// Package ctl is "ipfront ctl": the command line client of the daemon's
// control API. It knows the API only through the reply types of package v1,
// so it builds without the daemon, the data plane or their dependencies.
package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

const ctlUsage = `usage: ipfront ctl [--api ADDR] [--token T] [-o json] COMMAND [ARGS]

flags (also accepted after COMMAND):
  --api ADDR    daemon API: host:port or unix:/path
                (default $IPFRONT_API, else 127.0.0.1:9180)
  --token T     bearer token, needed when the API listens beyond loopback
                (default $IPFRONT_TOKEN)
  -o FORMAT     table (default) or json: the API's reply as it came

commands:
  status                 readiness, table generation, interfaces, workers
  counters               packet, drop and association totals, per worker
  sets                   target sets
  servers [SET]          servers with state, associations, rates and totals
  assoc [--set S] [--client ADDR] [--server NAME|ADDR] [--limit N] [--cursor C]
                         associations, one page at a time
  alarms                 balance alarms, active first
  expectations [SET]     FTP helper: data connections expected, counters
  persistence [--set S] [--client ADDR]
                         clients kept on one server (persistence records),
                         counters of persistence and owned ports
  reload                 re-read the configuration file; fails with every
                         problem listed if the daemon refuses it
  drain SET SERVER       no new associations for SERVER (name or address);
                         existing ones continue
  enable SET SERVER      undo drain
  bgp                    VIP announcement: BGP sessions, announced and
                         withdrawn VIPs
  drain-node             withdraw every VIP from the routers; traffic that
                         still arrives is forwarded
  undrain-node           announce the VIPs again
  ha                     association replication: mates, state, lag, counters
  top [--interval D] [-n N]
                         live view of workers, servers and alarms, redrawn
                         every second; q or Ctrl-C quits
`

// DefaultAPI is where ctl looks for the daemon without --api or $IPFRONT_API.
const DefaultAPI = "127.0.0.1:9180"

// ctlTimeout exceeds the daemon's own bound on reload and drain, so the
// daemon's answer arrives before ctl gives up.
const ctlTimeout = v1.OpTimeout + 5*time.Second

// ctlOpts are ctl's flags.
type ctlOpts struct {
	api, token, output  string
	set, client, server string // assoc filters
	cursor              string
	limit               int
	top                 topOpts // top.go
	stdout, stderr      io.Writer
}

// Run runs "ipfront ctl args...": it parses the command line, calls the API
// and prints the reply on stdout, hints and usage on stderr.
func Run(args []string, stdout, stderr io.Writer) error {
	o := &ctlOpts{api: os.Getenv("IPFRONT_API"), token: os.Getenv("IPFRONT_TOKEN"), output: "table",
		stdout: stdout, stderr: stderr, limit: v1.DefaultAssocLimit}
	if o.api == "" {
		o.api = DefaultAPI
	}
	fs := o.flagSet("ctl", false)
	if err := fs.Parse(args); err != nil {
		return helpIsNoError(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, ctlUsage)
		return errors.New("ipfront ctl: missing command")
	}
	cmd := fs.Arg(0)
	if cmd == "help" {
		fmt.Fprint(stdout, ctlUsage)
		return nil
	}
	sub := o.flagSet("ctl "+cmd, cmd == "assoc")
	if cmd == "persistence" {
		sub.StringVar(&o.set, "set", "", "only this target set's persistence group")
		sub.StringVar(&o.client, "client", "", "only the record of this client address")
	}
	if cmd == "top" {
		topFlags(sub, &o.top)
	}
	pos, err := parseInterleaved(sub, fs.Args()[1:])
	if err != nil {
		return helpIsNoError(err)
	}
	if o.output != "table" && o.output != "json" {
		return fmt.Errorf("ipfront ctl: -o %q: want table or json", o.output)
	}
	nargs := map[string][2]int{"status": {0, 0}, "counters": {0, 0}, "sets": {0, 0}, "servers": {0, 1},
		"assoc": {0, 0}, "alarms": {0, 0}, "reload": {0, 0}, "drain": {2, 2}, "enable": {2, 2},
		"expectations": {0, 1}, "persistence": {0, 0}, "bgp": {0, 0}, "ha": {0, 0}, "top": {0, 0}, "drain-node": {0, 0}, "undrain-node": {0, 0}}
	n, ok := nargs[cmd]
	if !ok {
		fmt.Fprint(stderr, ctlUsage)
		return fmt.Errorf("ipfront ctl: unknown command %q", cmd)
	}
	if len(pos) < n[0] || len(pos) > n[1] {
		return fmt.Errorf("ipfront ctl %s: wrong number of arguments (see ipfront ctl help)", cmd)
	}
	c, err := newCtlClient(o.api, o.token)
	if err != nil {
		return err
	}
	if cmd == "top" { // runs until q or Ctrl-C: no overall timeout
		return runTop(o, c, os.Stdin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	switch cmd {
	case "status":
		// Served with 503 until the daemon is ready; the body says so.
		return show(o, c.call(ctx, http.MethodGet, "/v1/status", nil, http.StatusServiceUnavailable), new(v1.Status), printStatus)
	case "counters":
		return show(o, c.call(ctx, http.MethodGet, "/v1/counters", nil), new(v1.Counters), printCounters)
	case "sets":
		return show(o, c.call(ctx, http.MethodGet, "/v1/sets", nil), new(v1.Sets), printSets)
	case "servers":
		q := url.Values{}
		if len(pos) == 1 {
			q.Set("set", pos[0])
		}
		return show(o, c.call(ctx, http.MethodGet, "/v1/servers", q), new(v1.Servers), printServers)
	case "assoc":
		q := url.Values{"limit": {strconv.Itoa(o.limit)}}
		for k, v := range map[string]string{"set": o.set, "client": o.client, "server": o.server, "cursor": o.cursor} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return show(o, c.call(ctx, http.MethodGet, "/v1/associations", q), new(v1.Associations),
			func(w io.Writer, r *v1.Associations) {
				printAssociations(w, r)
				if r.NextCursor != "" {
					fmt.Fprintf(o.stderr, "more associations follow: add --cursor %s\n", r.NextCursor)
				}
			})
	case "alarms":
		return show(o, c.call(ctx, http.MethodGet, "/v1/alarms", nil), new(v1.Alarms), printAlarms)
	case "expectations":
		q := url.Values{}
		if len(pos) == 1 {
			q.Set("set", pos[0])
		}
		return show(o, c.call(ctx, http.MethodGet, "/v1/expectations", q), new(v1.Expectations), printExpectations)
	case "persistence":
		q := url.Values{}
		for k, v := range map[string]string{"set": o.set, "client": o.client} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return show(o, c.call(ctx, http.MethodGet, "/v1/persistence", q), new(v1.Persistence), printPersistence)
	case "reload":
		return show(o, c.call(ctx, http.MethodPost, "/v1/reload", nil), new(v1.ReloadResult), printReload)
	case "bgp":
		return show(o, c.call(ctx, http.MethodGet, "/v1/bgp", nil), new(v1.BGP), printBGP) // print_bgp.go
	case "ha":
		return show(o, c.call(ctx, http.MethodGet, "/v1/ha", nil), new(v1.HA), printHA) // print_ha.go
	case "drain-node", "undrain-node":
		path := "/v1/node/" + strings.TrimSuffix(cmd, "-node")
		return show(o, c.call(ctx, http.MethodPost, path, nil), new(v1.BGP), printBGP)
	default: // drain, enable
		path := "/v1/servers/" + url.PathEscape(pos[0]) + "/" + url.PathEscape(pos[1]) + "/" + cmd
		return show(o, c.call(ctx, http.MethodPost, path, nil), new(v1.Server), printAdmin)
	}
}

// flagSet declares the flags every command accepts, plus assoc's own.
func (o *ctlOpts) flagSet(name string, assoc bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(o.stderr)
	fs.Usage = func() { fmt.Fprint(o.stderr, ctlUsage) }
	fs.StringVar(&o.api, "api", o.api, "API address: host:port or unix:/path")
	fs.StringVar(&o.token, "token", o.token, "bearer token")
	fs.StringVar(&o.output, "o", o.output, "output: table or json")
	if assoc {
		fs.StringVar(&o.set, "set", "", "only this target set")
		fs.StringVar(&o.client, "client", "", "only this client address")
		fs.StringVar(&o.server, "server", "", "only this server (name or address)")
		fs.StringVar(&o.cursor, "cursor", "", "continue after a previous page")
		fs.IntVar(&o.limit, "limit", o.limit, "associations per page")
	}
	return fs
}

// helpIsNoError lets -h print the usage (the flag package did) and succeed.
func helpIsNoError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// parseInterleaved parses flags wherever they appear among the positional
// arguments, which it returns.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// reply is an API answer: its body, or why there is none.
type reply struct {
	body []byte
	err  error
}

// show prints a reply: as it came with -o json, else decoded into v and
// laid out by print. A refused request prints the API's JSON error with
// -o json and fails either way.
func show[T any](o *ctlOpts, r reply, v *T, print func(io.Writer, *T)) error {
	if o.output == "json" && r.body != nil {
		if _, err := o.stdout.Write(r.body); err != nil {
			return err
		}
	}
	if r.err != nil {
		return r.err
	}
	if o.output == "json" {
		return nil
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("ipfront ctl: unreadable reply: %w", err)
	}
	print(o.stdout, v)
	return nil
}

// ctlClient calls one daemon's API.
type ctlClient struct {
	addr  string // as the user gave it, for messages
	base  string // URL prefix
	token string
	hc    *http.Client
}

func newCtlClient(addr, token string) (*ctlClient, error) {
	c := &ctlClient{addr: addr, token: token, hc: &http.Client{}}
	switch {
	case strings.HasPrefix(addr, "unix:"):
		path := strings.TrimPrefix(addr, "unix:")
		var d net.Dialer
		c.hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}}
		c.base = "http://ipfront"
	case strings.HasPrefix(addr, "http://"), strings.HasPrefix(addr, "https://"):
		c.base = strings.TrimSuffix(addr, "/")
	default:
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("ipfront ctl: --api %q: want host:port or unix:/path", addr)
		}
		c.base = "http://" + addr
	}
	return c, nil
}

// call sends one request. Statuses other than 2xx and those in ok are
// errors carrying the API's message; the body is kept for -o json.
func (c *ctlClient) call(ctx context.Context, method, path string, q url.Values, ok ...int) reply {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return reply{err: err}
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return reply{err: fmt.Errorf("cannot reach the ipfront API at %s: %w", c.addr, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{err: fmt.Errorf("read reply from %s: %w", c.addr, err)}
	}
	if resp.StatusCode/100 == 2 {
		return reply{body: body}
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return reply{body: body}
		}
	}
	return reply{body: body, err: apiError(c.addr, method, path, resp.StatusCode, body)}
}

// apiError turns a refusal into an error: the API's message, every problem
// of a refused configuration on its own line, and a hint where one helps.
func apiError(addr, method, path string, code int, body []byte) error {
	var e v1.Error
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
		if e.Error == "" {
			e.Error = http.StatusText(code)
		}
	}
	var b bytes.Buffer
	switch code {
	case http.StatusUnauthorized:
		fmt.Fprintf(&b, "the API at %s refused the request: %s (pass --token or set $IPFRONT_TOKEN)", addr, e.Error)
	case http.StatusUnprocessableEntity:
		fmt.Fprintf(&b, "%s refused: %s", strings.TrimPrefix(path, "/v1/"), e.Error)
	default:
		fmt.Fprintf(&b, "%s %s: %s (%d)", method, path, e.Error, code)
	}
	for _, line := range e.Errors {
		fmt.Fprintf(&b, "\n  %s", line)
	}
	return errors.New(b.String())
}
