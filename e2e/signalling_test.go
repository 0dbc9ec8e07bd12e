//go:build linux

package e2e

// Telecom signalling end to end (issue 12): multihomed SCTP found by its
// verification tag, with crafted packets (the lab's kernel has no SCTP)
// captured by raw sockets in the servers' namespaces; Diameter staleness
// and server-initiated connections with real TCP sockets.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/packet"
	pt "github.com/ipfront/ipfront/fastpath/packet/packettest"
	"github.com/ipfront/ipfront/internal/lab"
	"github.com/ipfront/ipfront/slowpath"
)

// sigVIP2 is the signalling set's secondary address (the second TSA).
var sigVIP2 = netip.MustParseAddr("192.0.2.11")

// sigPeerB is a multihomed peer's second address; its first is the lab
// client's. It is on the lab's subnet, so the servers' reverse-path check
// passes it.
var sigPeerB = netip.MustParseAddr("198.51.100.200")

// sigPort is the SCTP (Diameter) port of the signalling set.
const sigPort = 3868

// sctpSig is what ipfront's SCTP test reads of /v1/counters.
type sctpSig struct {
	NewAssociations uint64 `json:"new_associations"`
	Reselected      uint64 `json:"reselected"`
	TagIndexHits    uint64 `json:"sctp_tag_index_hits"`
	TagCollisions   uint64 `json:"sctp_tag_collisions"`
	SCTPTagMismatch uint64 `json:"sctp_tag_mismatch"`
	DiameterStale   uint64 `json:"diameter_stale"`
}

func (e *spEnv) sigCounters() sctpSig {
	e.t.Helper()
	var c sctpSig
	e.api("/v1/counters", &c)
	return c
}

// sigSCTPConfig is a lab of three servers with an SCTP set "sig" on the
// default VIP and sigVIP2, the servers weighted as w (the TCP set gets the
// same weights: /v1/servers lists servers by name).
func sigSCTPConfig(w [3]int) spConfig {
	return sigConfig(fmt.Sprintf("\n[[target_set]]\nname = \"sig\"\naddress = %q\nsecondary_address = %q\nprotocols = [\"sctp\"]\nports = [\"%d\"]\ndelete_age = \"30s\"\n",
		lab.DefaultVIP4, sigVIP2, sigPort), w)
}

// sigConfig is a lab of three servers weighted as w with set, a
// [[target_set]] table, after the slow-path tests' TCP set: set has no
// health checks and lists the servers by their IPv4 addresses; the lab has
// the default VIPs and sigVIP2.
func sigConfig(set string, w [3]int) spConfig {
	var servers []spServer
	var b strings.Builder
	b.WriteString(set)
	b.WriteString("  [target_set.health]\n  type = \"none\"\n")
	for i, wt := range w {
		role := fmt.Sprintf("s%d", i+1)
		servers = append(servers, spServer{role, wt})
		fmt.Fprintf(&b, "  [[target_set.server]]\n  name = %q\n  address = %q\n  weight = %d\n", role, lab.ServerIPv4(i+1), wt)
	}
	return spConfig{Servers: servers, Balance: balanceOff, Tables: b.String(),
		LabOptions: []lab.Option{lab.WithVIPs(lab.DefaultVIP4, sigVIP2, lab.DefaultVIP6)}}
}

// sctpProbe sends crafted SCTP packets from the lab client's port to the
// signalling set and tells which server received each.
type sctpProbe struct {
	e    *spEnv
	raw  *lab.RawSender
	seen chan sctpSeen // sctpSeen: spoof_test.go
}

// newSCTPProbe opens raw SCTP sockets in every server's namespace (rawIP:
// spoof_test.go) and a raw sender in the client's.
func (e *spEnv) newSCTPProbe() *sctpProbe {
	e.t.Helper()
	p := &sctpProbe{e: e, seen: make(chan sctpSeen, 256)}
	client := e.lab.Client()
	for _, s := range e.lab.Servers() {
		role := s.Role
		e.rawIP(s.NS, packet.ProtoSCTP, func(src netip.Addr, l4 []byte) {
			if src != client.IPv4 && src != sigPeerB || len(l4) < packet.SCTPHeaderLen+packet.SCTPChunkHeaderLen ||
				binary.BigEndian.Uint16(l4[2:4]) != sigPort {
				return
			}
			sc := packet.SCTP(l4)
			select { // never blocks the reader; the test reads each in turn
			case p.seen <- sctpSeen{server: role, chunk: sc.ChunkType(), flags: sc.ChunkFlags(), tag: sc.VerificationTag()}:
			default:
			}
		})
	}
	var err error
	if p.raw, err = lab.NewRawSender(client.NS, client.Ifname, false); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.raw.Close() })
	return p
}

// frame is an SCTP packet of one chunk from src:sport to dst.
func (p *sctpProbe) frame(src, dst netip.Addr, sport uint16, chunk uint8, vtag uint32) []byte {
	client := p.e.lab.Client()
	s := packet.FrameSpec{Src: src, Dst: dst, Proto: packet.ProtoSCTP, SrcPort: sport, DstPort: sigPort,
		SrcMAC: [6]byte(client.MAC), DstMAC: [6]byte(p.e.lab.LB().MAC), SCTPChunk: chunk, SCTPTag: vtag}
	switch chunk {
	case packet.SCTPChunkInit: // initiate tag, a_rwnd, streams, initial TSN
		s.Payload = binary.BigEndian.AppendUint32(nil, 0x1badcafe)
		s.Payload = binary.BigEndian.AppendUint32(s.Payload, 65536)
		s.Payload = append(s.Payload, 0, 1, 0, 1)
		s.Payload = binary.BigEndian.AppendUint32(s.Payload, 1)
	case packet.SCTPChunkCookieEcho: // the state cookie the server sent
		s.Payload = []byte("a state cookie..")
	case packet.SCTPChunkData: // TSN, stream, sequence, PPID 46, data
		s.Payload = append(binary.BigEndian.AppendUint32(make([]byte, 8), 46), "a diameter message..."...)
	case packet.SCTPChunkHeartbeat: // heartbeat info parameter
		s.Payload = []byte{0, 1, 0, 8, 1, 2, 3, 4}
	case packet.SCTPChunkShutdown: // cumulative TSN ack
		s.Payload = make([]byte, 4)
	}
	return pt.Encode(p.e.t, s)
}

// send sends b and returns the server that received it, failing unless it
// arrived as sent.
func (p *sctpProbe) send(what string, b []byte) string {
	p.e.t.Helper()
	if err := p.raw.Send(b); err != nil {
		p.e.t.Fatal(err)
	}
	l4 := packet.SCTP(b[packet.EthernetHeaderLen+packet.IPv4MinHeaderLen:])
	select {
	case s := <-p.seen:
		if s.chunk != l4.ChunkType() || s.tag != l4.VerificationTag() {
			p.e.t.Fatalf("%s: a server received %v, want chunk %d tag %#x", what, s, l4.ChunkType(), l4.VerificationTag())
		}
		return s.server
	case <-time.After(5 * time.Second):
		p.e.t.Fatalf("%s: no server received it within 5s; counters: %+v", what, p.e.sigCounters())
	}
	return ""
}

// sctpAssoc is one crafted association: its peer port, tag and server.
type sctpAssoc struct {
	sport uint16
	tag   uint32
	home  string
}

// open runs an association's opening on its first path (peer A to the
// primary VIP): INIT, then COOKIE ECHO with the server's tag, which
// ipfront learns and indexes; both must reach one server.
func (p *sctpProbe) open(sport uint16, tag uint32) sctpAssoc {
	p.e.t.Helper()
	a := p.e.lab.Client().IPv4
	home := p.send(fmt.Sprintf("port %d INIT", sport), p.frame(a, lab.DefaultVIP4, sport, packet.SCTPChunkInit, 0))
	if got := p.send(fmt.Sprintf("port %d COOKIE ECHO", sport), p.frame(a, lab.DefaultVIP4, sport, packet.SCTPChunkCookieEcho, tag)); got != home {
		p.e.t.Fatalf("port %d: COOKIE ECHO reached %s, its INIT %s", sport, got, home)
	}
	return sctpAssoc{sport, tag, home}
}

// TestSignallingSCTPMultihomed: 100 crafted associations from a peer with
// two addresses, each opened on its first path (address A to the primary
// VIP), then carrying DATA from address B to the secondary VIP, HEARTBEAT
// from B to the primary and DATA from A to the secondary: every packet of
// an association reaches the server of its INIT, the associations spread
// over the three servers by the hash, and the tag index found each second
// path once. A reload then takes the first server's weight away: an
// association on it that sends SHUTDOWN with its tag and then INIT is
// selected afresh (it moves); one that receives a forged ABORT with a
// wrong tag followed by INIT stays.
func TestSignallingSCTPMultihomed(t *testing.T) {
	e := startSP(t, 3, sigSCTPConfig([3]int{1, 1, 1}))
	e.requireOneWorker() // spoof_test.go
	p := e.newSCTPProbe()
	before := e.sigCounters()
	a := e.lab.Client().IPv4
	const n = 100
	first := uint16(e.sports(n))
	var assocs []sctpAssoc
	spread := map[string]int{}
	for i := range n {
		as := p.open(first+uint16(i), 0x7a000000+uint32(i)*7919)
		spread[as.home]++
		for _, step := range []struct {
			name     string
			src, dst netip.Addr
			chunk    uint8
		}{
			{"DATA from B to the secondary VIP", sigPeerB, sigVIP2, packet.SCTPChunkData},
			{"HEARTBEAT from B to the primary VIP", sigPeerB, lab.DefaultVIP4, packet.SCTPChunkHeartbeat},
			{"DATA from A to the secondary VIP", a, sigVIP2, packet.SCTPChunkData},
		} {
			if got := p.send(step.name, p.frame(step.src, step.dst, as.sport, step.chunk, as.tag)); got != as.home {
				t.Errorf("port %d: %s reached %s, want %s (where its INIT went)", as.sport, step.name, got, as.home)
			}
		}
		assocs = append(assocs, as)
	}
	t.Logf("100 associations over the servers: %v", spread)
	for _, s := range []string{"s1", "s2", "s3"} {
		if spread[s] < 15 { // 33 expected; the hash puts fewer than 15 with probability < 1e-5
			t.Errorf("server %s has %d of %d associations, want about a third: %v", s, spread[s], n, spread)
		}
	}
	var after sctpSig
	e.waitFor(5*time.Second, "tag index hits counted", func() (bool, string) {
		after = e.sigCounters()
		return after.TagIndexHits-before.TagIndexHits >= n, fmt.Sprintf("sctp_tag_index_hits +%d, want +%d", after.TagIndexHits-before.TagIndexHits, n)
	})
	if got := after.TagIndexHits - before.TagIndexHits; got != n || after.TagCollisions != before.TagCollisions {
		t.Errorf("sctp_tag_index_hits +%d and sctp_tag_collisions +%d, want +%d (each association's second address once) and 0",
			got, after.TagCollisions-before.TagCollisions, n)
	}

	// ctl assoc shows an association's tag and both its paths.
	r := e.ctlOK("assoc", "--client", sigPeerB.String(), "--limit", "1")
	if !strings.Contains(r.stdout, "TAG") || !strings.Contains(r.stdout, sigPeerB.String()+":") || !strings.Contains(r.stdout, a.String()+":") {
		t.Errorf("ipfront ctl assoc --client %s: want the SCTP tag and both paths:\n%s", sigPeerB, r.stdout)
	}

	e.writeConfig(sigSCTPConfig([3]int{0, 1, 1}))
	e.reload("sighup")
	var onS1 []sctpAssoc
	for _, as := range assocs {
		if as.home == "s1" {
			onS1 = append(onS1, as)
		}
	}
	before = e.sigCounters()
	for i, as := range onS1 {
		if i%2 == 0 { // the peer's own teardown: taken, and INIT selects again
			if got := p.send("SHUTDOWN", p.frame(a, lab.DefaultVIP4, as.sport, packet.SCTPChunkShutdown, as.tag)); got != "s1" {
				t.Errorf("port %d: SHUTDOWN reached %s, want s1", as.sport, got)
			}
			if got := p.send("INIT after SHUTDOWN", p.frame(a, lab.DefaultVIP4, as.sport, packet.SCTPChunkInit, 0)); got == "s1" {
				t.Errorf("port %d: INIT after the peer's SHUTDOWN reached s1, want a fresh selection (s1 has weight 0)", as.sport)
			}
			continue
		}
		if got := p.send("forged ABORT", p.frame(a, sigVIP2, as.sport, packet.SCTPChunkAbort, as.tag^0x5a5a)); got != "s1" {
			t.Errorf("port %d: forged ABORT reached %s, want s1", as.sport, got)
		}
		if got := p.send("INIT after a forged ABORT", p.frame(a, lab.DefaultVIP4, as.sport, packet.SCTPChunkInit, 0)); got != "s1" {
			t.Errorf("port %d: INIT after a forged ABORT reached %s, want s1: the association moved", as.sport, got)
		}
		if got := p.send("DATA from B after a forged ABORT", p.frame(sigPeerB, sigVIP2, as.sport, packet.SCTPChunkData, as.tag)); got != "s1" {
			t.Errorf("port %d: DATA from B after a forged ABORT reached %s, want s1", as.sport, got)
		}
	}
	forged, moved := uint64(len(onS1)/2), uint64(len(onS1)-len(onS1)/2)
	e.waitFor(5*time.Second, "forged ABORTs and re-selections counted", func() (bool, string) {
		after = e.sigCounters()
		return after.SCTPTagMismatch-before.SCTPTagMismatch >= forged && after.Reselected-before.Reselected >= moved,
			fmt.Sprintf("sctp_tag_mismatch +%d, want +%d; reselected +%d, want +%d", after.SCTPTagMismatch-before.SCTPTagMismatch, forged,
				after.Reselected-before.Reselected, moved)
	})
	if got, want := after.Reselected-before.Reselected, moved; got != want {
		t.Errorf("reselected +%d, want +%d (the associations that shut down, and only those)", got, want)
	}
}

// TestSignallingSCTPNoTagIndex: with the tag index turned off by the test
// hook, an association's second address lands by the hash of its own
// address: most second paths reach another server than their INIT's. This
// is the break the index repairs (TestSignallingSCTPMultihomed).
func TestSignallingSCTPNoTagIndex(t *testing.T) {
	t.Setenv(slowpath.TestHooksEnv, slowpath.HookNoTagIndex) // ipfront inherits the environment
	e := startSP(t, 3, sigSCTPConfig([3]int{1, 1, 1}))
	e.requireOneWorker()
	p := e.newSCTPProbe()
	const n = 30
	first := uint16(e.sports(n))
	moved := 0
	for i := range n {
		as := p.open(first+uint16(i), 0x6b000000+uint32(i)*7919)
		if got := p.send("DATA from B", p.frame(sigPeerB, sigVIP2, as.sport, packet.SCTPChunkData, as.tag)); got != as.home {
			moved++
		}
	}
	// By the hash, each second path misses its server with probability
	// 2/3: fewer than 5 of 30 misses has probability below 1e-6.
	if moved < 5 {
		t.Errorf("without the tag index %d of %d second paths reached another server than their INIT's, want most: the hook did not turn the index off", moved, n)
	}
	if c := e.sigCounters(); c.TagIndexHits != 0 {
		t.Errorf("sctp_tag_index_hits = %d without the index, want 0", c.TagIndexHits)
	}
	t.Logf("without the tag index, %d of %d second paths reached another server", moved, n)
}

// sigDiameterConfig is a lab of three servers with a TCP set "dia" on
// sigVIP2 (the servers' iplab ports) with diameter = true and a 2s
// delete_age, the servers weighted as w (the TCP set gets the same
// weights: /v1/servers lists servers by name).
func sigDiameterConfig(w [3]int) spConfig {
	return sigConfig(fmt.Sprintf("\n[[target_set]]\nname = \"dia\"\naddress = %q\nprotocols = [\"tcp\"]\nports = [%q]\ndiameter = true\ndelete_age = \"2s\"\n",
		sigVIP2, ports), w)
}

// Diameter command codes the test sends.
const (
	diameterCER = 257 // Capabilities-Exchange
	diameterCCR = 272 // Credit-Control, an application request
)

// diameter sends one Diameter request header (RFC 6733 3: version 1,
// length 20, the request flag, the command code, application 0, hop-by-hop
// and end-to-end identifiers) as its own segment and reads the echo.
func (cc *ctlConn) diameter(code uint32) error {
	cc.n++
	msg := make([]byte, 20)
	binary.BigEndian.PutUint32(msg[0:4], 1<<24|20)
	binary.BigEndian.PutUint32(msg[4:8], 0x80<<24|code)
	binary.BigEndian.PutUint32(msg[12:16], uint32(cc.n))
	binary.BigEndian.PutUint32(msg[16:20], uint32(cc.n))
	cc.c.SetDeadline(time.Now().Add(time.Second))
	if _, err := cc.c.Write(msg); err != nil {
		return fmt.Errorf("%s: write command %d: %w", cc.name, code, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(cc.br, got); err != nil {
		return fmt.Errorf("%s: echo of command %d: %w", cc.name, code, err)
	}
	if string(got) != string(msg) {
		return fmt.Errorf("%s: echo %x, want %x", cc.name, got, msg)
	}
	return nil
}

// TestSignallingDiameterStale: two Diameter connections from the client to
// one server through a diameter = true set with a 2s delete_age, held open
// and exchanging a request every 200 ms. One only ever sends
// Capabilities-Exchange requests; the other sent a Credit-Control request
// once. A reload takes their server's weight away, so a re-selection
// moves a connection (and the new server resets it). The CER-only
// connection is stale delete_age after it was made, however busy: it is
// forgotten (diameter_stale), its next segment goes elsewhere and it
// breaks, and a new connection from its port is balanced afresh. The
// other keeps its server and echoes throughout.
func TestSignallingDiameterStale(t *testing.T) {
	e := startSP(t, 3, sigDiameterConfig([3]int{1, 1, 1}))
	e.requireOneWorker()
	src := e.lab.Client().IPv4
	cerPort := e.sports(1)
	cer := e.control(src, cerPort, sigVIP2, 7000)
	var app *ctlConn
	for range 20 { // a second connection on the same server
		c := e.control(src, e.sports(1), sigVIP2, 7000)
		if c.server == cer.server {
			app = c
			break
		}
		c.c.Close()
	}
	if app == nil {
		t.Fatalf("no connection of 20 reached %s", cer.server)
	}
	for _, step := range []struct {
		cc   *ctlConn
		code uint32
	}{{cer, diameterCER}, {app, diameterCER}, {app, diameterCCR}} {
		if err := step.cc.diameter(step.code); err != nil {
			t.Fatal(err)
		}
	}
	before := e.sigCounters()
	w := [3]int{1, 1, 1}
	w[cer.server[1]-'1'] = 0
	e.writeConfig(sigDiameterConfig(w))
	e.reload("sighup")

	var broke error
	deadline := time.Now().Add(10 * time.Second) // 2s delete_age, a sweep, a reload
	for broke == nil && time.Now().Before(deadline) {
		broke = cer.diameter(diameterCER)
		if err := app.diameter(diameterCER); err != nil {
			t.Fatalf("the connection that carried a Credit-Control request broke: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the peers' pace, not a synchronisation
	}
	if broke == nil {
		t.Fatalf("the CER-only connection kept its server for 10s, want it forgotten after its 2s delete_age; counters %+v", e.sigCounters())
	}
	t.Logf("the CER-only connection broke once forgotten: %v", broke)
	if c := e.sigCounters(); c.DiameterStale-before.DiameterStale < 1 {
		t.Errorf("diameter_stale +%d, want at least 1 (the CER-only connection)", c.DiameterStale-before.DiameterStale)
	}
	cer.c.Close()
	again, err := e.dialControl(src, cerPort, sigVIP2, 7000)
	if err != nil {
		t.Fatalf("reconnecting from the CER-only connection's port: %v", err)
	}
	if again.server == cer.server {
		t.Errorf("a new connection from port %d reached %s again, want a fresh selection (%s has weight 0)", cerPort, again.server, cer.server)
	}
	for range 3 { // the application connection is still where it was
		if err := app.diameter(diameterCCR); err != nil {
			t.Fatalf("the connection that carried a Credit-Control request: %v", err)
		}
	}
}

// sigOwned are the owned port ranges of the initiator test's servers.
var sigOwned = map[string][2]int{"s1": {40000, 40099}, "s2": {41000, 41099}, "s3": {42000, 42099}}

// sigPeerPort is the first listening port of the initiator test's peer.
const sigPeerPort = 9000

// TestSignallingInitiator: a set in mode initiator_responder whose three
// servers own disjoint source port ranges outside its listening ports.
// Each server opens 10 TCP connections from the VIP and ports of its own
// range to listeners in the client's namespace (DSR: the servers hold the
// VIP on lo; the client routes the VIP through ipfront), and exchanges
// 3 x 4 KiB naming itself: the peer's answers reach the right server by
// the range (every echo verified, each connection's source port in its
// server's range, its messages that server's). Meanwhile 60 responder
// connections to the listening port spread by the hash.
//
// Subtest "one peer port" is the deployment's case, every connection to
// the peer's one Diameter port: the peer's answers all come from one
// address and port, so only the owned destination port (routed without an
// association) tells their servers apart.
func TestSignallingInitiator(t *testing.T) {
	t.Run("one peer port", func(t *testing.T) {
		sigInitiator(t, func(int) int { return sigPeerPort })
	})
	t.Run("a peer port per connection", func(t *testing.T) {
		sigInitiator(t, func(k int) int { return sigPeerPort + k })
	})
}

// sigInitiator runs TestSignallingInitiator with the k-th connection to
// peer port peerPort(k).
func sigInitiator(t *testing.T, peerPort func(k int) int) {
	keys := map[string]string{}
	for role, r := range sigOwned {
		keys[role] = fmt.Sprintf("owned_ports = [\"%d-%d\"]", r[0], r[1])
	}
	e := startSP(t, 3, spConfig{Servers: []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, Balance: balanceOff,
		SetKeys: `mode = "initiator_responder"`, ServerKeys: keys})
	client := e.lab.Client()
	const perServer = 10

	// The peer's listeners: echo every connection, and report each
	// connection's source port with the server its first message names.
	type accepted struct {
		port   int
		server string
	}
	acc := make(chan accepted, 3*perServer)
	listening := map[int]bool{}
	for k := range 3 * perServer {
		if p := peerPort(k); !listening[p] {
			listening[p] = true
			e.peerListen(netip.AddrPortFrom(client.IPv4, uint16(p)), func(port int, server string) { acc <- accepted{port, server} })
		}
	}

	// Every server opens 10 connections from its range at once.
	errs := make(chan error, 3*perServer)
	for j, s := range e.lab.Servers() {
		for i := range perServer {
			peer := netip.AddrPortFrom(client.IPv4, uint16(peerPort(j*perServer+i)))
			go func() { errs <- sigInitiate(e, s, sigOwned[s.Role][0]+i, peer) }()
		}
	}
	r := e.tcpBatch(60) // responder connections, meanwhile
	for range 3 * perServer {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	requireAllOK(t, "responder connections during the initiator ones", r)
	for _, s := range []string{"s1", "s2", "s3"} {
		if r.Servers[s] < 10 { // 20 expected
			t.Errorf("responder connections by server = %v, want about 20 each", r.Servers)
			break
		}
	}
	for range 3 * perServer {
		var a accepted
		select {
		case a = <-acc:
		case <-time.After(ftIO):
			t.Fatalf("the listeners accepted fewer than %d connections", 3*perServer)
		}
		if rg := sigOwned[a.server]; a.port < rg[0] || a.port > rg[1] {
			t.Errorf("a connection from port %d carried %s's messages, want a port of %s's range %d-%d", a.port, a.server, a.server, rg[0], rg[1])
		}
	}
}

// peerListen listens on addr in the client's namespace until the test
// ends, echoes every line of every connection, and calls got with each
// connection's source port and the first word of its first line.
func (e *spEnv) peerListen(addr netip.AddrPort, got func(port int, first string)) {
	e.t.Helper()
	var ln net.Listener
	if err := lab.Do(e.lab.Client().NS, func() (err error) {
		ln, err = net.Listen("tcp", addr.String())
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for first := true; ; first = false {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if first {
						got(c.RemoteAddr().(*net.TCPAddr).Port, strings.Fields(line)[0])
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// sigInitiate opens a TCP connection from the VIP and port sport in server
// s's namespace to peer and verifies three 4 KiB echoes that name s.
func sigInitiate(e *spEnv, s lab.Host, sport int, peer netip.AddrPort) error {
	var c net.Conn
	err := lab.Do(s.NS, func() (err error) {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(e.vip, uint16(sport))), Timeout: ftIO}
		c, err = d.DialContext(e.ctx, "tcp", peer.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: connect from %s:%d to %s: %w", s.Role, e.vip, sport, peer, err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		msg := fmt.Sprintf("%s %d %d %s\n", s.Role, sport, i, strings.Repeat("x", 4000))
		c.SetDeadline(time.Now().Add(ftIO))
		if _, err := c.Write([]byte(msg)); err != nil {
			return fmt.Errorf("%s port %d: write: %w", s.Role, sport, err)
		}
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s port %d: echo %d: %w", s.Role, sport, i, err)
		}
		if line != msg {
			return fmt.Errorf("%s port %d: echo %d differs (%d bytes, want %d)", s.Role, sport, i, len(line), len(msg))
		}
	}
	return nil
}
