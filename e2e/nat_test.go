//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// NAT end to end: ipfront translates a NAT set's traffic both ways between a
// client on another subnet and servers whose default gateway is ipfront,
// with real kernel sockets on both ends, in the two lab shapes. The
// servers' kernels count, with nftables, the packets they receive on the
// test ports by source address: every one must come from the client's own
// address (ipfront preserved it), none from anywhere else (ipfront's own
// health checks excepted). Replies reach the client's sockets, which are
// connected to the VIP, only if they were translated back to it: the
// namespace of ipfront does not forward, so nothing else carries them.

// natEnv is a NAT lab with servers, nftables counters and ipfront running.
type natEnv struct {
	lab *lab.NATLab
	vip netip.Addr
}

// natSetup builds a NAT lab of the given shape with one server per weight,
// starts "iplab serve" on each (ready once ipfront's namespace gets their
// greeting), installs the counters, writes a configuration with one NAT set
// on the VIP of the family, TCP and UDP on ports 7000-7010, starts ipfront
// and waits until it is ready. Cleanups stop everything and remove the lab.
func natSetup(t *testing.T, mode lab.NATMode, v6 bool, weights []int) *natEnv {
	t.Helper()
	requireEnv(t)
	l, err := lab.NewNAT(lab.UniquePrefix("e2enat"), len(weights), mode)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, l)
	e := &natEnv{lab: l, vip: l.VIP(v6)}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	logTo := testLogTo(t)
	startEchoServers(t, ctx, l.Lab, logTo, func(_ int, s lab.Host) netip.Addr { return s.Addr(v6) })
	for _, s := range l.Servers() {
		e.installCounters(t, s)
	}
	cfg := e.writeConfig(t, weights)
	startIpfront(t, ctx, l.Lab, cfg, logTo("ipfront"))
	return e
}

// writeConfig writes the test's configuration: the lab's interfaces, one
// NAT set over the servers' addresses of the VIP's family.
// startEchoServers starts "iplab serve" (TCP and UDP on ports) on every
// server of l, stopped at cleanup, and waits until each greets the load
// balancer's namespace from greetAt(i, server):7000.
func startEchoServers(t *testing.T, ctx context.Context, l *lab.Lab, logTo func(string) io.Writer, greetAt func(int, lab.Host) netip.Addr) {
	t.Helper()
	for i, s := range l.Servers() {
		p, err := l.StartProc(s.NS, s.Role, logTo(s.Role), iplabBin, "serve", "--name", s.Role, "--tcp", ports, "--udp", ports)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Stop(2 * time.Second); err != nil {
				t.Errorf("server: %v", err)
			}
		})
		if err := lab.WaitGreeting(ctx, l.LB().NS, netip.AddrPortFrom(greetAt(i, s), 7000), s.Role, p.Done()); err != nil {
			t.Fatalf("server %s: %v", s.Role, err)
		}
	}
}

func (e *natEnv) writeConfig(t *testing.T, weights []int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(dataplaneTOML(e.lab.LBInterfaces(), 65536))
	fmt.Fprintf(&b, `
[[target_set]]
name = "nat"
address = %q
protocols = ["tcp", "udp"]
ports = [%q, "%d"]
forwarding = "nat"
delete_age = "30s"
`, e.vip, ports, closedPort)
	for i, s := range e.lab.Servers() {
		fmt.Fprintf(&b, "\n  [[target_set.server]]\n  name = %q\n  address = %q\n  weight = %d\n", s.Role, s.Addr(e.vip.Is6()), weights[i])
	}
	return writeTempConfig(t, "ipfront.toml", b.String())
}

// installCounters adds nftables counters to server s: packets to the test
// ports from the client's address, and from any address but the client's
// and ipfront's own (whose health checks and neighbour probes are its
// business).
func (e *natEnv) installCounters(t *testing.T, s lab.Host) {
	t.Helper()
	lb := e.lab.LB()
	rules := fmt.Sprintf(`table inet e2e {
	counter client {}
	counter other {}
	chain in {
		type filter hook input priority 0; policy accept;
		meta l4proto { tcp, udp } th dport %[1]s ip saddr %[2]s counter name client
		meta l4proto { tcp, udp } th dport %[1]s ip6 saddr %[3]s counter name client
		meta l4proto { tcp, udp } th dport %[1]s ip saddr != { %[2]s, %[4]s } counter name other
		meta l4proto { tcp, udp } th dport %[1]s ip6 saddr != { %[3]s, %[5]s } counter name other
	}
}
`, ports, lab.NATClientIPv4, lab.NATClientIPv6, lb.IPv4, lb.IPv6)
	cmd := e.lab.Command(s.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", s.Role, err, out)
	}
}

var nftPackets = regexp.MustCompile(`packets (\d+)`)

// counter reads one of server s's counters.
func (e *natEnv) counter(t *testing.T, s lab.Host, name string) int {
	t.Helper()
	out, err := e.lab.Exec(s.NS, "nft", "list", "counter", "inet", "e2e", name)
	if err != nil {
		t.Fatal(err)
	}
	m := nftPackets.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("nft counter %s of %s: no packet count in %q", name, s.Role, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// client runs "iplab <args> -o json" in the client's namespace into r.
func (e *natEnv) client(t *testing.T, r any, args ...string) {
	(&env{lab: e.lab.Lab, vip: e.vip}).client(t, r, args...)
}

// checkClientAddress checks every server saw the client's own address on
// the test ports, and nobody else's.
func (e *natEnv) checkClientAddress(t *testing.T) {
	t.Helper()
	for _, s := range e.lab.Servers() {
		client, other := e.counter(t, s, "client"), e.counter(t, s, "other")
		t.Logf("%s: %d packets from the client's address, %d from others", s.Role, client, other)
		if client == 0 || other != 0 {
			t.Errorf("%s received %d packets from the client's address and %d from other addresses; want some and none",
				s.Role, client, other)
		}
	}
}

// natCounters reads ipfront's counters from its API.
func (e *natEnv) natCounters(t *testing.T) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := lab.GetJSON(ctx, e.lab.LB().NS, apiURL+"/v1/counters")
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkTranslationsListed: the API (and so ipfront ctl assoc) shows each NAT
// association's translation, VIP -> the server it names.
func (e *natEnv) checkTranslationsListed(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := lab.GetJSON(ctx, e.lab.LB().NS, apiURL+"/v1/associations?limit=50")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Associations []struct {
			Address string `json:"address"`
			NAT     string `json:"nat"`
		} `json:"associations"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Associations) == 0 {
		t.Fatal("/v1/associations lists no association after the traffic")
	}
	for _, a := range r.Associations {
		if want := e.vip.String() + "->" + a.Address; a.Address != "" && a.NAT != want {
			t.Errorf("association to %s lists translation %q, want %q", a.Address, a.NAT, want)
		}
	}
}

// closedPort is a port of the NAT set on which the servers listen to
// nothing: their kernels answer UDP with an ICMP port unreachable error.
const closedPort = 7011

// checkICMPFromServer sends a datagram through the VIP to closedPort: the
// server's ICMP port unreachable, quoting the datagram it got (client ->
// server), must reach the client's socket, connected to the VIP, as an
// error, which the client's kernel only matches if ipfront translated the
// quote back to the VIP.
func (e *natEnv) checkICMPFromServer(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lab.DialContext(ctx, e.lab.Client().NS, "udp", netip.AddrPortFrom(e.vip, closedPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	// The server's kernel rate-limits ICMP errors (one per second and peer
	// by default); a few tries a second apart ride that out.
	for try := 0; try < 5; try++ {
		if _, err := c.Write([]byte("anyone?")); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return
			}
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			t.Fatalf("a datagram to port %d was answered; want the server's port unreachable", closedPort)
		}
	}
	t.Errorf("the server's ICMP port unreachable never reached the client's socket (counters %v)", e.natCounters(t)["drops"])
}

func TestNATTwoArmedIPv4(t *testing.T) { testNAT(t, lab.NATTwoArmed, false) }

func TestNATTwoArmedIPv6(t *testing.T) { testNAT(t, lab.NATTwoArmed, true) }

func TestNATOneArmedIPv4(t *testing.T) { testNAT(t, lab.NATOneArmed, false) }

func TestNATOneArmedIPv6(t *testing.T) { testNAT(t, lab.NATOneArmed, true) }

// testNAT sends 300 TCP connections through a NAT set weighted 1:2:3, every
// echoed byte verified and each server's share checked, then 50 UDP flows of
// 20 datagrams each answered; every server must have seen the client's own
// address, and a server's ICMP error must reach the client translated.
func testNAT(t *testing.T, mode lab.NATMode, v6 bool) {
	weights := []int{1, 2, 3}
	e := natSetup(t, mode, v6, weights)
	const conns = 300
	var r lab.TCPReport
	e.client(t, &r, "tcp", "--vip", e.vip.String(), "--port", port, "--conns", strconv.Itoa(conns),
		"--parallel", "16", "--bytes", "4096", "--timeout", "5s", "--sport", tcpSourcePort)
	if r.Conns != conns || r.OK != conns || r.Failed != 0 {
		t.Errorf("connections: %d ok, %d failed of %d, want all %d ok; reasons %v, first failures %+v",
			r.OK, r.Failed, r.Conns, conns, r.Reasons, r.Failures)
	}
	if want := int64(conns * 4096); r.BytesVerified != want {
		t.Errorf("bytes verified = %d, want %d", r.BytesVerified, want)
	}
	checkShares(t, r.Servers, e.lab.Servers(), weights, 8)

	const flows, packets = 50, 20
	var u lab.UDPReport
	e.client(t, &u, "udp", "--vip", e.vip.String(), "--port", port,
		"--flows", strconv.Itoa(flows), "--packets", strconv.Itoa(packets), "--timeout", "1s")
	if u.Sent != flows*packets || u.Replies != flows*packets || u.Lost != 0 || u.Mismatched != 0 {
		t.Errorf("UDP: sent %d, replies %d, lost %d, mismatched %d; want %d, %d, 0, 0; errors %v",
			u.Sent, u.Replies, u.Lost, u.Mismatched, flows*packets, flows*packets, u.Errors)
	}
	if u.MultiServerFlows != 0 || u.SilentFlows != 0 || len(u.Servers) < 2 {
		t.Errorf("UDP: %d flows on more than one server, %d silent, flows per server %v; want 0, 0, several servers",
			u.MultiServerFlows, u.SilentFlows, u.Servers)
	}
	e.checkClientAddress(t)
	e.checkICMPFromServer(t)
	e.checkTranslationsListed(t)
	if c := e.natCounters(t); c["dropped"] != float64(0) {
		t.Errorf("ipfront dropped %v frames (%v), want none", c["dropped"], c["drops"])
	}
}
