//go:build linux

package e2e

// High availability behind ECMP (issue 11's "Must show"): BIRD 2 in a
// router namespace learns the VIP over BGP from two ipfront instances and
// spreads the clients' flows across both (ECMP by ports); the instances
// replicate their associations to each other ([ha]) and set the same
// hash_seed; the servers answer the clients directly (DSR). One test walks
// through a failure, a rejoin, loss on the sync link, an attack on it and a
// graceful stop, with the same long-lived connections throughout:
//
//  1. 50 long-lived connections stream through the VIP (least_load, so
//     only replication tells an instance where its mate sent a flow);
//     lb1 is killed with SIGKILL: every connection keeps echoing once the
//     router has moved lb1's flows to lb2 (none reset). The convergence
//     times (kill -> router route, kill -> last connection echoing again)
//     are logged and written to convergence.txt in the test's artifact
//     directory.
//  2. With 10 % of each instance's incoming sync datagrams dropped
//     (nftables numgen), lb1 restarts and pulls lb2's table (a bulk
//     resync, repaired under loss) before it announces; flows made on
//     either side meanwhile replicate: both instances end up with the same
//     associations on the same servers, and both report their mate synced.
//  3. From a third namespace (server s3's, on the sync segment), datagrams
//     spoofed from lb2's sync address reach lb1: a captured authentic one
//     resent (replayed), one altered after it was sealed and one sealed
//     with the wrong key (forged), one cut short (malformed). Each is
//     counted by its reason and changes nothing.
//  4. lb2's machine fails (the switch drops every frame of its port, its
//     ipfront is killed): the router notices only when the BGP hold time
//     runs out; the connections carry on through lb1 after that (measured
//     and written like step 1's). lb2 restarts and pulls lb1's table.
//  5. SIGTERM on lb2: the router loses lb2's route first, every new
//     connection during its drain succeeds, lb2 exits 0 after drain_time,
//     and the long-lived connections all carry on through lb1.
//
// BGP timers: the router's sessions use hold time 3 s and keepalive 1 s
// (lab.BIRDConfig; the instances ask for 3 s too), the shortest BGP
// allows. BFD would detect a dead machine faster and BIRD 2 has it, but
// ipfront's embedded speaker (github.com/osrg/gobgp/v3 v3.37.0) does not
// speak it (GoBGP gained BFD in v4.6, osrg/gobgp#3402), so it is not used.
// A SIGKILL closes the instance's BGP sockets and the router hears of the
// death at once (the session's TCP connection ends); when the machine
// itself goes (step 4) the hold time bounds the router's convergence.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/packet"
	pt "github.com/ipfront/ipfront/fastpath/packet/packettest"
	"github.com/ipfront/ipfront/internal/lab"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

const (
	// haECMPSeed is both instances' hash_seed: the same Maglev choices on
	// both, so a flow whose record had not arrived yet still hashes alike.
	haECMPSeed = "e2e-ha-ecmp-same-seed-on-both"
	// haECMPTimeout bounds the whole test, set-up included.
	haECMPTimeout = 150 * time.Second
	// haECMPInterval is how often each long-lived connection echoes.
	haECMPInterval = 100 * time.Millisecond
	// haLossTable is the nftables table dropping sync datagrams.
	haLossTable = "haloss"
	// haSyncMagic heads every sync message (slowpath/ha/wire.go).
	haSyncMagic = "IPFH"
)

// haECMPEnv is the routed lab with BIRD, three servers and two ipfront
// instances mated over [ha].
type haECMPEnv struct {
	*spEnv // the servers, the client's programs, the test's deadline
	rl     *lab.RoutedLab
	bird   *lab.BIRD
	key    string       // the shared secret's file
	lbs    []lab.Host   // lb1, lb2
	cfgs   []string     // their configuration files
	mu     sync.Mutex   // guards ipf
	ipf    []*lab.Proc  // the running ipfront of each, nil when stopped
	vipRt  netip.Prefix // the IPv4 VIP as a host route
}

// startHAECMP builds the lab and starts everything; cleanups stop it all
// and remove the lab, also on failure.
func startHAECMP(t *testing.T) *haECMPEnv {
	t.Helper()
	requireEnv(t)
	if _, err := lab.BIRDPath(); err != nil {
		t.Skipf("HA behind ECMP needs BIRD 2 as the router: %v (.ci/run installs bird2)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), haECMPTimeout)
	t.Cleanup(cancel)
	rl, err := lab.NewRouted(lab.UniquePrefix("e2ehae"), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, rl)
	sp := newSPEnv(t, ctx, rl.Lab, lab.DefaultVIP4)
	e := &haECMPEnv{spEnv: sp, rl: rl, lbs: rl.LBs(), vipRt: netip.PrefixFrom(lab.DefaultVIP4, 32)}
	for _, s := range rl.Servers() {
		sp.startServer(s.Role)
	}
	e.bird, err = rl.StartBIRD(t.TempDir(), e.out("bird"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.bird.Close(); err != nil {
			t.Errorf("bird: %v", err)
		}
	})
	e.key = filepath.Join(t.TempDir(), "ha.key")
	if err := os.WriteFile(e.key, []byte("e2e-ha-ecmp-shared-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ipf = make([]*lab.Proc, len(e.lbs))
	t.Cleanup(func() {
		for i := range e.lbs {
			if p := e.proc(i); p != nil {
				if err := p.Stop(bgpDrainTime + 10*time.Second); err != nil {
					t.Errorf("ipfront on %s did not exit cleanly on SIGTERM: %v", e.lbs[i].Role, err)
				}
			}
		}
	})
	for i := range e.lbs {
		e.cfgs = append(e.cfgs, e.writeInstanceConfig(i))
	}
	// Both start at once: each pulls the other's (empty) table.
	for i := range e.lbs {
		e.startInstance(i)
	}
	for i := range e.lbs {
		e.waitInstanceReady(i)
	}
	return e
}

// out is a log writer for a program's output lines.
func (e *haECMPEnv) out(name string) io.Writer {
	return &lab.PrefixWriter{W: testLog{e.t}, Prefix: name + " | ", Mu: &e.outMu}
}

// proc returns instance i's running ipfront, nil if stopped.
func (e *haECMPEnv) proc(i int) *lab.Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ipf[i]
}

// writeInstanceConfig writes instance i's configuration: the same target
// set, method and hash_seed as its mate's, BGP to the router, [ha] to the
// mate.
func (e *haECMPEnv) writeInstanceConfig(i int) string {
	e.t.Helper()
	lb, mate := e.lbs[i], e.lbs[1-i]
	var b strings.Builder
	b.WriteString(dataplaneTOML([]string{lab.LBIfname}, 65536, fmt.Sprintf("hash_seed = %q", haECMPSeed)))
	fmt.Fprintf(&b, `%s
[ha]
listen = %q
mates = [%q]
key_file = %q

[[target_set]]
name = %q
address = %q
protocols = ["tcp", "udp"]
ports = [%q]
method = "least_load"
delete_age = "90s"
%s  [target_set.balance]
  enabled = false
`, speakerTOML(lb),
		netip.AddrPortFrom(lb.IPv4, haPort), netip.AddrPortFrom(mate.IPv4, haPort), e.key,
		setName, lab.DefaultVIP4, ports, quickHealthTOML)
	for _, s := range e.rl.Servers() {
		fmt.Fprintf(&b, "  [[target_set.server]]\n  name = %q\n  address = %q\n", s.Role, s.IPv4)
	}
	return writeTempConfig(e.t, "ipfront-"+lb.Role+".toml", b.String())
}

// startInstance starts ipfront on load balancer i.
func (e *haECMPEnv) startInstance(i int) {
	e.t.Helper()
	lb := e.lbs[i]
	p, err := e.rl.StartProc(lb.NS, "ipfront-"+lb.Role, e.out("ipfront-"+lb.Role), ipfrontBin, "run", "--config", e.cfgs[i])
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.ipf[i] = p
	e.mu.Unlock()
}

// waitInstanceReady waits until instance i's API says ready (which it
// says only once it has pulled its mate's table or found no mate).
func (e *haECMPEnv) waitInstanceReady(i int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if err := lab.WaitReady(ctx, e.lbs[i].NS, apiURL+"/v1/status", e.proc(i).Done()); err != nil {
		e.t.Fatalf("ipfront on %s not ready: %v", e.lbs[i].Role, err)
	}
}

// kill stops instance i with SIGKILL and returns once it is gone.
func (e *haECMPEnv) kill(i int) {
	e.t.Helper()
	p := e.proc(i)
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	<-p.Done()
	e.mu.Lock()
	e.ipf[i] = nil
	e.mu.Unlock()
}

// waitHops waits until the router's route to the VIP goes via exactly the
// given load balancers and returns how long that took.
func (e *haECMPEnv) waitHops(what string, lbs ...lab.Host) time.Duration {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	var want []netip.Addr
	for _, lb := range lbs {
		want = append(want, lb.IPv4)
	}
	d, err := e.bird.WaitNextHops(ctx, e.vipRt, want...)
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	return d
}

// getJSON decodes GET path of the instance on lb into v.
func (e *haECMPEnv) getJSON(lb lab.Host, path string, v any) error {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	body, err := lab.GetJSON(ctx, lb.NS, apiURL+path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s on %s: %w: %s", path, lb.Role, err, body)
	}
	return nil
}

// mustJSON is getJSON failing the test on error.
func (e *haECMPEnv) mustJSON(lb lab.Host, path string, v any) {
	e.t.Helper()
	if err := e.getJSON(lb, path, v); err != nil {
		e.t.Fatal(err)
	}
}

// ha returns lb's /v1/ha and its one mate.
func (e *haECMPEnv) ha(lb lab.Host) (v1.HA, v1.HAMate) {
	e.t.Helper()
	var h v1.HA
	e.mustJSON(lb, "/v1/ha", &h)
	if len(h.Mates) != 1 {
		e.t.Fatalf("/v1/ha on %s: %d mates, want 1: %+v", lb.Role, len(h.Mates), h)
	}
	return h, h.Mates[0]
}

// newAssociations is lb's new_associations counter: the flows it chose a
// server for itself.
func (e *haECMPEnv) newAssociations(lb lab.Host) uint64 {
	e.t.Helper()
	var c v1.Counters
	e.mustJSON(lb, "/v1/counters", &c)
	return c.NewAssociations
}

// associations returns every flow association lb holds (its own and
// imported), "proto client:port" -> the server's address.
func (e *haECMPEnv) associations(lb lab.Host) (map[string]string, error) {
	m := map[string]string{}
	cursor := ""
	for {
		var page v1.Associations
		path := "/v1/associations?limit=" + strconv.Itoa(v1.MaxAssocLimit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := e.getJSON(lb, path, &page); err != nil {
			return nil, err
		}
		for _, a := range page.Associations {
			m[fmt.Sprintf("%s %s", a.Protocol, netip.AddrPortFrom(a.Client, a.Port))] = a.Address
		}
		if cursor = page.NextCursor; cursor == "" {
			return m, nil
		}
	}
}

// nft runs nft with args in namespace ns.
func (e *haECMPEnv) nft(ns string, args ...string) string {
	e.t.Helper()
	out, err := e.rl.Exec(ns, append([]string{"nft"}, args...)...)
	if err != nil {
		e.t.Fatalf("nft %s in %s: %v: %s", strings.Join(args, " "), ns, err, out)
	}
	return out
}

// lossDropped is how many sync datagrams lb's loss rule dropped
// (nftPackets: nat_test.go).
func (e *haECMPEnv) lossDropped(lb lab.Host) uint64 {
	e.t.Helper()
	out := e.nft(lb.NS, "list", "table", "inet", haLossTable)
	m := nftPackets.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("no counter in the loss table of %s:\n%s", lb.Role, out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// echoTimes snapshots hold and returns each connection's last echo,
// failing the test if one failed.
func (e *haECMPEnv) echoTimes(h *streamClient[lab.HoldReport], what string) []time.Time {
	e.t.Helper()
	r := h.snapshot(e.spEnv)
	last := make([]time.Time, len(r.Connections))
	for _, c := range r.Connections {
		if !c.FailedAt.IsZero() {
			e.t.Fatalf("%s: long-lived connection %d (port %d, %s) failed at %s: %s (%s: %s)", what, c.Conn, c.SourcePort,
				c.Server, c.FailedAt.Format(time.StampMilli), c.Kind, c.Stage, c.Error)
		}
		last[c.Conn] = c.LastEcho
	}
	return last
}

// resumed polls hold until every connection has echoed after t0 and
// returns, per connection, the first echo seen after t0 (a snapshot every
// 20 ms, well within the echo interval, so that is the first echo after
// t0, give or take a snapshot). It fails the test if a connection fails or
// stays silent for patience.
func (e *haECMPEnv) resumed(h *streamClient[lab.HoldReport], t0 time.Time, patience time.Duration, what string) []time.Time {
	e.t.Helper()
	var first []time.Time
	deadline := t0.Add(patience)
	for {
		last := e.echoTimes(h, what)
		if first == nil {
			first = make([]time.Time, len(last))
		}
		var waiting []int
		for i, at := range last {
			switch {
			case !first[i].IsZero():
			case at.After(t0):
				first[i] = at
			default:
				waiting = append(waiting, i)
			}
		}
		if len(waiting) == 0 {
			return first
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: long-lived connections %v echoed nothing since %s", what, waiting, t0.Format(time.StampMilli))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncCapture keeps the sync datagrams lb2 sends lb1 as lb1's stack
// delivers them (a raw socket sees what passed the firewall).
type syncCapture struct {
	mu  sync.Mutex
	got [][]byte // UDP payloads, in arrival order
}

func (c *syncCapture) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *syncCapture) at(i int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.got[i]...)
}

// capture starts capturing sync datagrams from mate to lb.
func (e *haECMPEnv) capture(lb, mate lab.Host) *syncCapture {
	c := &syncCapture{}
	e.rawIP(lb.NS, packet.ProtoUDP, func(src netip.Addr, l4 []byte) {
		if src != mate.IPv4 || len(l4) < 8 || binary.BigEndian.Uint16(l4[0:]) != haPort ||
			binary.BigEndian.Uint16(l4[2:]) != haPort || !strings.HasPrefix(string(l4[8:]), haSyncMagic) {
			return
		}
		c.mu.Lock()
		if len(c.got) < 1024 {
			c.got = append(c.got, append([]byte(nil), l4[8:]...))
		}
		c.mu.Unlock()
	})
	return c
}

// syncMessage is a sync datagram sealed with key (slowpath/ha/wire.go's
// layout: header, body, HMAC-SHA256 over both).
func syncMessage(key []byte, typ uint8, epoch, seq uint64, at time.Time, body []byte) []byte {
	const headerLen, macLen = 40, sha256.Size
	b := make([]byte, headerLen, headerLen+len(body)+macLen)
	copy(b, haSyncMagic)
	b[4], b[5] = 1, typ
	binary.BigEndian.PutUint16(b[6:], uint16(headerLen+len(body)+macLen))
	binary.BigEndian.PutUint64(b[8:], epoch)
	binary.BigEndian.PutUint64(b[16:], seq)
	binary.BigEndian.PutUint64(b[24:], uint64(at.UnixNano()))
	b = append(b, body...)
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return mac.Sum(b)
}

// syncDelete is a sync record deleting the TCP flow association of
// client:port in set (slowpath/ha/wire.go's record layout).
func syncDelete(set string, client netip.AddrPort) []byte {
	a := netip.AddrFrom16(client.Addr().As16()) // IPv4-mapped, as in keys
	addr := a.As16()
	b := []byte{2, 0, packet.ProtoTCP, 0} // op delete, kind flow, TCP, no flags
	b = append(b, addr[:]...)
	b = binary.BigEndian.AppendUint16(b, client.Port())
	b = binary.BigEndian.AppendUint32(b, 0) // age
	b = binary.BigEndian.AppendUint32(b, 0) // tag
	b = append(b, byte(len(set)))
	b = append(b, set...)
	return append(b, 0) // no server in a delete
}

// failover makes an instance fail (fail) under the long-lived connections
// of hold and measures the convergence: from the failure to the router's
// route via survivor alone, and to the last connection echoing again. It
// fails the test unless every connection carries on; it logs the times
// and appends them as a line to convergence.txt in the test's artifact
// directory.
func (e *haECMPEnv) failover(hold *streamClient[lab.HoldReport], what string, survivor lab.Host, fail func()) {
	e.t.Helper()
	before := e.echoTimes(hold, "just before the "+what)
	routeTook := make(chan time.Duration, 1)
	failed := time.Now()
	fail()
	go func() {
		// The route may change before this goroutine polls: its time is
		// still measured from the failure.
		ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
		defer cancel()
		if _, err := e.bird.WaitNextHops(ctx, e.vipRt, survivor.IPv4); err != nil {
			e.t.Errorf("router after the %s: %v", what, err)
		}
		routeTook <- time.Since(failed)
	}()
	first := e.resumed(hold, failed, 15*time.Second, "after the "+what)
	route := <-routeTook
	var lastConn, worst time.Duration
	stalled := 0
	for i, at := range first {
		lastConn = max(lastConn, at.Sub(failed))
		// Echoes are haECMPInterval apart; a lost one waits for TCP's
		// retransmission (200 ms at least).
		if gap := at.Sub(before[i]); gap > 2*haECMPInterval {
			stalled++
			worst = max(worst, gap)
		}
	}
	line := fmt.Sprintf("ha-ecmp convergence after the %s: router's route via %s alone %v after it; "+
		"last of %d connections echoing again %v after it; %d of them stalled (longest gap between echoes %v); "+
		"BGP hold time 3s, keepalive 1s, no BFD",
		what, survivor.Role, route.Round(time.Millisecond), len(first), lastConn.Round(time.Millisecond),
		stalled, worst.Round(time.Millisecond))
	e.t.Log(line)
	f, err := os.OpenFile(filepath.Join(e.t.ArtifactDir(), "convergence.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = fmt.Fprintln(f, line)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		e.t.Errorf("convergence.txt: %v", err)
	}
}

func TestHAECMPFailover(t *testing.T) {
	e := startHAECMP(t)
	lb1, lb2 := e.lbs[0], e.lbs[1]
	e.waitHops("both instances announce the VIP", lb1, lb2)
	for _, lb := range e.lbs {
		if h, m := e.ha(lb); !h.Joined || !m.Pulled || m.State != "synced" {
			t.Fatalf("/v1/ha on %s = %+v, want joined, mate pulled and synced", lb.Role, h)
		}
	}

	// 1. 50 long-lived connections through both instances; lb1 killed.
	const conns = 50
	hold := startStream[lab.HoldReport](e.spEnv, "hold", "--conns", strconv.Itoa(conns), "--interval", haECMPInterval.String(),
		"--bytes", "512", "--timeout", "10s", "--sport", strconv.Itoa(e.sports(conns)))
	if hold.ready.Connected != conns || hold.ready.Failed != 0 {
		t.Fatalf("iplab hold: %d of %d connections greeted, %d failed: %+v", hold.ready.Connected, conns, hold.ready.Failed, hold.ready.Connections)
	}
	holdPorts := make([]uint16, conns)
	for _, c := range hold.ready.Connections {
		holdPorts[c.Conn] = uint16(c.SourcePort)
	}
	t.Logf("iplab hold: %d connections up, by server %v", conns, hold.ready.Servers)
	if len(hold.ready.Servers) < 2 {
		t.Errorf("least_load put all %d connections on %v, want them spread", conns, hold.ready.Servers)
	}
	made := []uint64{e.newAssociations(lb1), e.newAssociations(lb2)}
	if made[0] == 0 || made[1] == 0 {
		t.Fatalf("new associations by instance %v: ECMP sent no connection through one of them, the kill would prove nothing", made)
	}
	t.Logf("connections balanced by lb1: %d, by lb2: %d (ECMP by ports)", made[0], made[1])
	// Each instance holds every connection's association (its own and its
	// mate's) before lb1 dies.
	for _, lb := range e.lbs {
		e.waitFor(10*time.Second, lb.Role+" holds every association", func() (bool, string) {
			m, err := e.associations(lb)
			return err == nil && len(m) >= conns, fmt.Sprintf("%d associations (%v)", len(m), err)
		})
	}
	e.resumed(hold, time.Now(), 5*time.Second, "streaming before the kill")

	e.failover(hold, "SIGKILL of lb1's ipfront", lb2, func() { e.kill(0) })
	requireAllOK(t, "new connections through lb2 alone", e.tcpBatch(20))

	// 2. 10 % of each instance's incoming sync datagrams dropped; lb1
	// rejoins and pulls lb2's table under that loss, then both replicate
	// new flows under it.
	for _, lb := range e.lbs {
		e.nft(lb.NS, fmt.Sprintf("add table inet %s { chain in { type filter hook input priority 0; udp dport %d numgen random mod 10 0 counter drop; }; }",
			haLossTable, haPort))
	}
	const flows = 1500
	udp := func(what string) {
		var r lab.UDPReport
		e.client(t, &r, "udp", "--vip", lab.DefaultVIP4.String(), "--port", port, "--flows", strconv.Itoa(flows),
			"--packets", "2", "--parallel", "64", "--sport", strconv.Itoa(e.sports(flows)))
		if r.Replies != r.Sent || r.MultiServerFlows != 0 || r.SilentFlows != 0 {
			t.Fatalf("%s: UDP %d of %d replies, %d flows on several servers, %d silent", what, r.Replies, r.Sent, r.MultiServerFlows, r.SilentFlows)
		}
	}
	udp("UDP flows while lb1 is down")
	rejoin := time.Now()
	e.startInstance(0)
	e.waitInstanceReady(0)
	if h, m := e.ha(lb1); !h.Joined || !m.Pulled || m.ResyncsCompleted == 0 || m.Imported < flows+conns {
		t.Fatalf("/v1/ha on lb1 once ready = %+v, want joined after pulling lb2's table (>= %d records)", h, flows+conns)
	}
	took := e.waitHops("lb1 rejoined", lb1, lb2)
	t.Logf("lb1 restarted, pulled lb2's table under 10%% loss and was announced again %v after its start (router: %v)",
		time.Since(rejoin).Round(time.Millisecond), took.Round(time.Millisecond))
	// The router now sends about half of the flows to lb1 again.
	e.resumed(hold, time.Now(), 10*time.Second, "after lb1 rejoined")
	made = []uint64{e.newAssociations(lb1), e.newAssociations(lb2)}
	udp("UDP flows through both")
	if now := e.newAssociations(lb1); now == made[0] {
		t.Errorf("lb1 balanced none of the second %d UDP flows: ECMP did not spread them", flows)
	}
	var converged map[string]string
	e.waitFor(20*time.Second, "both instances hold the same associations", func() (bool, string) {
		m1, err1 := e.associations(lb1)
		m2, err2 := e.associations(lb2)
		_, s1 := e.ha(lb1)
		_, s2 := e.ha(lb2)
		if err1 != nil || err2 != nil {
			return false, fmt.Sprintf("%v %v", err1, err2)
		}
		differ := 0
		for k, v := range m1 {
			if m2[k] != v {
				differ++
			}
		}
		converged = m1
		// The long-lived connections, the UDP flows and the short
		// connections made while lb1 was down (their records stay for
		// delete_age).
		return maps.Equal(m1, m2) && len(m1) >= 2*flows+conns && s1.State == "synced" && s2.State == "synced",
			fmt.Sprintf("lb1 %d, lb2 %d associations (want the same, at least %d), %d of lb1's differ on lb2; mates %s and %s",
				len(m1), len(m2), 2*flows+conns, differ, s1.State, s2.State)
	})
	for _, lb := range e.lbs {
		_, m := e.ha(lb)
		t.Logf("%s's mate after the loss: %+v", lb.Role, m)
		if m.Unresolved != 0 || m.ImportDropped != 0 {
			t.Errorf("%s: %d records unresolved, %d import drops, want none (same configuration on both)", lb.Role, m.Unresolved, m.ImportDropped)
		}
		if d := e.lossDropped(lb); d == 0 {
			t.Errorf("%s's loss rule dropped no sync datagram: the loss proved nothing", lb.Role)
		} else {
			t.Logf("%s's loss rule dropped %d sync datagrams", lb.Role, d)
		}
	}
	_, m1 := e.ha(lb1)
	_, m2 := e.ha(lb2)
	if m1.NacksSent+m2.NacksSent+m1.Lost+m2.Lost == 0 {
		t.Errorf("no hole asked for or given up on either side under 10%% loss: lb1 %+v, lb2 %+v", m1, m2)
	}
	for _, lb := range e.lbs {
		e.nft(lb.NS, "delete", "table", "inet", haLossTable)
	}

	// 3. Forged, replayed and cut sync datagrams from a third namespace.
	// A message lb2 sent lb1 is captured as lb1's stack delivered it; once
	// a later one arrived, lb1 has accepted it.
	capt := e.capture(lb1, lb2)
	e.waitFor(5*time.Second, "two sync datagrams from lb2 captured at lb1", func() (bool, string) {
		n := capt.count()
		return n >= 2, fmt.Sprintf("%d captured", n)
	})
	auth := capt.at(0)
	_, mateBefore := e.ha(lb1)
	hBefore, _ := e.ha(lb1)
	attacker := e.rl.Server(3)
	raw, err := lab.NewRawSender(attacker.NS, attacker.Ifname, false)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	spoof := func(payload []byte) []byte {
		return pt.Encode(t, packet.FrameSpec{SrcMAC: [6]byte(attacker.MAC), DstMAC: [6]byte(lb1.MAC),
			Src: lb2.IPv4, Dst: lb1.IPv4, Proto: packet.ProtoUDP, SrcPort: haPort, DstPort: haPort, Payload: payload})
	}
	epoch, seq := binary.BigEndian.Uint64(auth[8:]), binary.BigEndian.Uint64(auth[16:])
	altered := slices.Clone(auth)
	binary.BigEndian.PutUint64(altered[16:], seq+100000) // a number never used, the HMAC kept
	victim := netip.AddrPortFrom(lab.NATClientIPv4, holdPorts[0])
	wrongKey := syncMessage([]byte("not-the-shared-secret-at-all!!"), 1, epoch, seq+100001, time.Now(),
		syncDelete(setName, victim))
	cut := auth[:len(auth)-7]
	const copies = 3
	for range copies {
		if err := raw.Send(spoof(auth), spoof(altered), spoof(wrongKey), spoof(cut)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]uint64{"replayed": copies, "forged": 2 * copies, "malformed": copies, "stale": 0}
	var mateAfter v1.HAMate
	e.waitFor(5*time.Second, "lb1 counts the spoofed datagrams", func() (bool, string) {
		_, mateAfter = e.ha(lb1)
		for r, n := range want {
			if mateAfter.Rejected[r]-mateBefore.Rejected[r] < n {
				return false, fmt.Sprintf("rejected %v, before %v", mateAfter.Rejected, mateBefore.Rejected)
			}
		}
		return true, ""
	})
	for r, n := range want {
		if got := mateAfter.Rejected[r] - mateBefore.Rejected[r]; got != n {
			t.Errorf("lb1's rejected[%q] grew by %d, want %d (rejected %v, before %v)", r, got, n, mateAfter.Rejected, mateBefore.Rejected)
		}
	}
	if hAfter, _ := e.ha(lb1); hAfter.UnknownPeer != hBefore.UnknownPeer {
		t.Errorf("lb1's unknown_peer grew by %d: the spoofed datagrams did not pass as lb2's", hAfter.UnknownPeer-hBefore.UnknownPeer)
	}
	t.Logf("lb1 rejected from lb2's address: %v (before the attack %v)", mateAfter.Rejected, mateBefore.Rejected)
	if m, err := e.associations(lb1); err != nil || !maps.Equal(m, converged) {
		t.Errorf("lb1's associations changed under the spoofed datagrams (%v): %d now, %d before; victim %s: %q",
			err, len(m), len(converged), victim, m["tcp "+victim.String()])
	}
	if _, m := e.ha(lb1); m.State != "synced" {
		t.Errorf("lb1's mate after the spoofed datagrams: %+v, want synced", m)
	}

	// 4. lb2's machine fails: the switch drops every frame to or from its
	// port, and its ipfront dies with it. No TCP FIN reaches the router
	// this time: its session with lb2 ends when the hold time (3 s) runs
	// out. (The port stays up: a port going down makes the bridge flood
	// lb2's frames to every port, and lb1's XDP program, on veth where no
	// NIC filters by MAC, would take them over at once.)
	port := "p-" + lb2.Role
	e.failover(hold, "loss of lb2's machine (the switch drops its frames, SIGKILL)", lb1, func() {
		e.nft(e.rl.Switch(), fmt.Sprintf(`add table bridge hadead { chain cut { type filter hook forward priority 0; iifname %q drop; oifname %q drop; }; }`, port, port))
		e.kill(1)
	})
	e.nft(e.rl.Switch(), "delete", "table", "bridge", "hadead")
	e.startInstance(1)
	e.waitInstanceReady(1)
	if h, m := e.ha(lb2); !h.Joined || !m.Pulled || m.Imported < 2*flows+conns {
		t.Fatalf("/v1/ha on lb2 once ready = %+v, want joined after pulling lb1's table (>= %d records)", h, 2*flows+conns)
	}
	e.waitHops("lb2 rejoined", lb1, lb2)
	e.resumed(hold, time.Now(), 10*time.Second, "after lb2 rejoined")

	// 5. SIGTERM on lb2: withdrawn first, drained, exit 0; nothing lost.
	madeBy2 := e.newAssociations(lb2)
	requireAllOK(t, "new connections before lb2's stop", e.tcpBatch(40))
	if e.newAssociations(lb2) == madeBy2 {
		t.Fatalf("no new connection went through lb2 before its stop (ECMP by ports): the stop would prove nothing")
	}
	p2 := e.proc(1)
	stopAt := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- p2.Stop(bgpDrainTime + 10*time.Second) }()
	withdrawn := make(chan time.Duration, 1)
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
		defer cancel()
		_, err := e.bird.WaitNextHops(ctx, e.vipRt, lb1.IPv4)
		if err != nil {
			t.Errorf("router during lb2's stop: %v", err)
		}
		withdrawn <- time.Since(stopAt)
	}()
	var total, ok int
	var exited error
	pace := time.NewTicker(100 * time.Millisecond) // new connections at a steady pace, not as fast as they go
	defer pace.Stop()
	for done := false; !done; {
		<-pace.C
		r := e.tcpBatch(10)
		total, ok = total+r.Conns, ok+r.OK
		requireAllOK(t, "new connections during lb2's drain", r)
		select {
		case exited = <-stopped:
			done = true
		default:
		}
	}
	lasted := time.Since(stopAt)
	e.mu.Lock()
	e.ipf[1] = nil
	e.mu.Unlock()
	gone := <-withdrawn
	t.Logf("lb2 stop: route withdrawn %v after SIGTERM, exit after %v; %d of %d new connections ok meanwhile",
		gone.Round(time.Millisecond), lasted.Round(time.Millisecond), ok, total)
	if exited != nil {
		t.Errorf("ipfront on lb2 exit after SIGTERM: %v, want status 0", exited)
	}
	if gone >= bgpDrainTime || lasted < bgpDrainTime {
		t.Errorf("lb2's route withdrawn after %v, exit after %v: want withdrawn within drain_time %v, exit after it", gone, lasted, bgpDrainTime)
	}
	e.resumed(hold, time.Now(), 10*time.Second, "after lb2 stopped")
	requireAllOK(t, "new connections through lb1 alone", e.tcpBatch(20))
	final := hold.stop(e.spEnv)
	if bad := failedConns(final); len(bad) != 0 {
		t.Errorf("long-lived connections %v failed, want none", bad)
	}
	t.Logf("long-lived connections by server (least_load): %v", final.Servers)
}
