//go:build linux

package e2e

// Spoofed teardowns end to end (issue 10): an attacker on the segment (a
// lab host that no set serves, its own namespace and MAC) forges TCP RST
// and FIN and SCTP ABORT, SHUTDOWN and SHUTDOWN COMPLETE from live
// clients' addresses and ports, each followed by an opening from the same
// address and port, after a reload that sends every new association
// elsewhere: were a forged teardown taken, the opening would re-select the
// victim's server and move it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/packet"
	pt "github.com/ipfront/ipfront/fastpath/packet/packettest"
	"github.com/ipfront/ipfront/internal/lab"
)

// spoofCounters is the part of /v1/counters the spoof tests read.
type spoofCounters struct {
	Drops           map[string]uint64 `json:"drops"`
	NewAssociations uint64            `json:"new_associations"`
	Reselected      uint64            `json:"reselected"`
	TeardownIgnored uint64            `json:"teardown_ignored"`
	SCTPTagMismatch uint64            `json:"sctp_tag_mismatch"`
	Workers         []struct {
		Name string `json:"name"`
	} `json:"workers"`
}

func (e *spEnv) spoofCounters() spoofCounters {
	e.t.Helper()
	var c spoofCounters
	e.api("/v1/counters", &c)
	return c
}

// requireOneWorker fails the test unless ipfront runs one worker: frames
// from the attacker's port and the client's must meet in the same shard
// (on a NIC, RSS puts a forged packet with the victim's addresses and
// ports on the victim's queue; veth queues by sender instead).
func (e *spEnv) requireOneWorker() {
	e.t.Helper()
	if c := e.spoofCounters(); len(c.Workers) != 1 {
		e.t.Fatalf("ipfront runs %d workers (%+v), want 1: the lab's veth must have one queue", len(c.Workers), c.Workers)
	}
}

// TestSpoofedTCPTeardown: 20 long-lived connections echo on s1 and s2; a
// reload gives s1 and s2 weight 0 and adds s3, so every re-selection goes
// to s3. The attacker (s4) forges for each connection a RST or a FIN
// whose sequence number is half the sequence space from the client's (a
// blind attacker's guess; the servers' own RFC 5961 checks ignore it too),
// then a SYN from the same address and port. Every forged teardown must be
// counted as ignored, no association re-selected, and every connection
// must keep its server and go on echoing.
func TestSpoofedTCPTeardown(t *testing.T) {
	e := startSP(t, 4, spConfig{Servers: []spServer{{"s1", 1}, {"s2", 1}}, Balance: balanceOff})
	e.requireOneWorker()
	attacker := e.host("s4")
	acks := e.watchAcks()
	hold := e.startHold(20, 50*time.Millisecond, 64)

	e.writeConfig(spConfig{Servers: []spServer{{"s1", 0}, {"s2", 0}, {"s3", 1}}, Balance: balanceOff})
	e.reload("sighup")
	// What a re-selection would do: every new connection goes to s3.
	if r := e.tcpBatch(20); r.OK != 20 || r.Servers["s3"] != 20 {
		t.Fatalf("new connections after the reload: %d ok, by server %v; want all 20 on s3", r.OK, r.Servers)
	}
	attackAt := time.Now()
	e.waitEchoed(hold, attackAt, nil, "before the attack") // every connection's ack is fresh

	raw, err := lab.NewRawSender(attacker.NS, attacker.Ifname, false)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	base := packet.FrameSpec{
		SrcMAC: [6]byte(attacker.MAC), DstMAC: [6]byte(e.lab.LB().MAC),
		Src: e.lab.Client().IPv4, Dst: e.vip, Proto: packet.ProtoTCP, DstPort: 7000,
	}
	// $IPFRONT_SOAK (make soak) repeats the attack with other guesses.
	for round := range soakFactor() {
		before := e.spoofCounters()
		var teardowns int
		for i, c := range hold.ready.Connections {
			ack, ok := acks.last(c.SourcePort)
			if !ok {
				t.Fatalf("no segment from the VIP to the client's port %d seen: cannot tell its sequence number", c.SourcePort)
			}
			// The client's next sequence number is about ack (what the
			// server acknowledged); a blind attacker's guess is anywhere.
			td, syn := base, base
			td.SrcPort, syn.SrcPort = uint16(c.SourcePort), uint16(c.SourcePort)
			td.Seq = ack + 1<<31 + uint32(round)<<20
			if i%2 == 0 {
				td.TCPFlags = packet.TCPFlagRST
			} else {
				td.TCPFlags, td.Ack = packet.TCPFlagFIN|packet.TCPFlagACK, 1
			}
			syn.TCPFlags, syn.Seq = packet.TCPFlagSYN, ack+1<<30
			if err := raw.Send(pt.Encode(t, td), pt.Encode(t, syn)); err != nil {
				t.Fatal(err)
			}
			teardowns++
		}
		e.sendMarker(raw, base, before)
		var after spoofCounters
		e.waitFor(5*time.Second, "every forged teardown counted", func() (bool, string) {
			after = e.spoofCounters() // a read may catch a publish half done: wait, then require exact
			return after.TeardownIgnored-before.TeardownIgnored >= uint64(teardowns),
				fmt.Sprintf("teardown_ignored +%d, want +%d", after.TeardownIgnored-before.TeardownIgnored, teardowns)
		})
		if got := after.TeardownIgnored - before.TeardownIgnored; got != uint64(teardowns) {
			t.Errorf("round %d: teardown_ignored rose by %d, want %d (every forged RST and FIN)", round, got, teardowns)
		}
		if r, n := after.Reselected-before.Reselected, after.NewAssociations-before.NewAssociations; r != 0 || n != 0 {
			t.Errorf("round %d: reselected rose by %d and new_associations by %d after the forged teardowns and SYNs, want 0 and 0: associations moved", round, r, n)
		}
		e.waitEchoed(hold, time.Now(), nil, fmt.Sprintf("round %d: after the forged teardowns", round))
	}

	// Each connection's association still names the server that greeted it.
	var assocs apiAssocs
	e.api("/v1/associations?set="+setName+"&limit=1000", &assocs)
	byPort := map[int]string{}
	for _, a := range assocs.Associations {
		if a.Client == e.lab.Client().IPv4.String() {
			byPort[a.Port] = a.Server
		}
	}
	final := hold.stop(e)
	for _, c := range final.Connections {
		requireEchoedAfter(t, c, attackAt, "echoing after the forged teardowns")
		if got := byPort[c.SourcePort]; got != c.Server {
			t.Errorf("association of port %d = server %q, want %s (the server that greeted it)", c.SourcePort, got, c.Server)
		}
	}
}

// sendMarker sends, after the attacker's frames, one frame ipfront counts
// as ttl_zero on the same socket (so in order behind them on the single
// queue) and waits for it: then every frame before it was processed.
func (e *spEnv) sendMarker(raw *lab.RawSender, base packet.FrameSpec, before spoofCounters) {
	e.t.Helper()
	m := base
	m.Src, m.Proto, m.SrcPort, m.Payload = spoof4, packet.ProtoUDP, 9, []byte("marker")
	if !m.Dst.Is4() {
		m.Src = spoof6
	}
	frame := pt.MutIPv4(pt.Encode(e.t, m), packet.EthernetHeaderLen, func(ip packet.IPv4) { ip[8] = 0 })
	if err := raw.Send(frame); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor(5*time.Second, "marker behind the attacker's frames counted", func() (bool, string) {
		c := e.spoofCounters()
		return c.Drops["ttl_zero"] > before.Drops["ttl_zero"], fmt.Sprintf("ttl_zero %d", c.Drops["ttl_zero"])
	})
}

// ackWatch records, per client port, the acknowledgement number of the
// last TCP segment from the VIP's port 7000 to the client: the client's
// next sequence number as the server last acknowledged it.
type ackWatch struct {
	mu   sync.Mutex
	acks map[int]uint32
}

func (w *ackWatch) last(port int) (uint32, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.acks[port]
	return a, ok
}

// watchAcks opens a raw IPv4 TCP socket in the client's namespace (it
// gets a copy of every TCP segment the client receives) and records the
// VIP's acknowledgements until the test ends.
func (e *spEnv) watchAcks() *ackWatch {
	e.t.Helper()
	w := &ackWatch{acks: map[int]uint32{}}
	vip := e.vip
	e.rawIP(e.lab.Client().NS, packet.ProtoTCP, func(src netip.Addr, l4 []byte) {
		if src != vip || len(l4) < 20 || binary.BigEndian.Uint16(l4[0:2]) != 7000 || l4[13]&packet.TCPFlagACK == 0 {
			return
		}
		w.mu.Lock()
		w.acks[int(binary.BigEndian.Uint16(l4[2:4]))] = binary.BigEndian.Uint32(l4[8:12])
		w.mu.Unlock()
	})
	return w
}

// rawIP opens a raw IPv4 socket of protocol proto in namespace ns and
// calls got with the source and the payload (the transport header on) of
// every packet of that protocol the namespace delivers locally, from one
// goroutine, until the test ends. The kernel hands raw sockets their copy
// before looking for the protocol's handler, so this sees SCTP on hosts
// without SCTP.
func (e *spEnv) rawIP(ns string, proto uint8, got func(src netip.Addr, l4 []byte)) {
	e.t.Helper()
	var c net.PacketConn
	err := lab.Do(ns, func() error {
		var err error
		c, err = net.ListenPacket("ip4:"+strconv.Itoa(int(proto)), "0.0.0.0")
		return err
	})
	if err != nil {
		e.t.Fatalf("raw IPv4 socket (protocol %d) in %s: %v", proto, ns, err)
	}
	done := make(chan struct{})
	e.t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					e.t.Logf("raw socket in %s: %v", ns, err)
				}
				return
			}
			if ip, ok := from.(*net.IPAddr); ok {
				if a, ok := netip.AddrFromSlice(ip.IP); ok {
					got(a.Unmap(), buf[:n])
				}
			}
		}
	}()
}

// sctpSeen is one SCTP packet a server received.
type sctpSeen struct {
	server string
	chunk  uint8
	flags  uint8
	tag    uint32
}

func (s sctpSeen) String() string {
	return fmt.Sprintf("%s: chunk %d flags %#x tag %#x", s.server, s.chunk, s.flags, s.tag)
}

// TestSpoofedSCTPTeardown: a client (crafted packets: the lab's kernel has
// no SCTP) opens an association with an SCTP set of s1 and s2 and ipfront
// learns its verification tag; a reload then gives its server weight 0
// and the other 1. The attacker (s3) forges from the client's address and
// port an ABORT with a wrong tag, an ABORT with the tag but the T bit set,
// a SHUTDOWN and a SHUTDOWN COMPLETE with wrong tags, each followed by an
// INIT. Every packet, forged or not, must reach the association's server
// (raw sockets in the servers' namespaces see which), every forged
// teardown must be counted as a tag mismatch and nothing re-selected. Then
// the client's own ABORT (the right tag, no T bit) and INIT must move it:
// the test sees a move when there is one.
func TestSpoofedSCTPTeardown(t *testing.T) {
	cfg := func(w1, w2 int) spConfig {
		servers := []spServer{{"s1", w1}, {"s2", w2}}
		var b strings.Builder
		fmt.Fprintf(&b, "\n[[target_set]]\nname = \"sctp\"\naddress = %q\nprotocols = [\"sctp\"]\nports = [%q]\ndelete_age = \"30s\"\n",
			lab.DefaultVIP4, ports)
		b.WriteString("  [target_set.health]\n  type = \"none\"\n")
		for _, s := range servers {
			fmt.Fprintf(&b, "  [[target_set.server]]\n  name = %q\n  address = %q\n  weight = %d\n", s.Role, lab.ServerIPv4(int(s.Role[1]-'0')), s.Weight)
		}
		// The TCP set has the same weights: /v1/servers lists servers by
		// name, and waitResolved checks the weights it finds.
		return spConfig{Servers: servers, Balance: balanceOff, Tables: b.String()}
	}
	e := startSP(t, 3, cfg(1, 1))
	e.requireOneWorker()
	client, attacker := e.lab.Client(), e.host("s3")
	sport := uint16(e.sports(1))

	seen := make(chan sctpSeen, 64)
	for _, role := range []string{"s1", "s2"} {
		e.rawIP(e.host(role).NS, packet.ProtoSCTP, func(src netip.Addr, l4 []byte) {
			if src != client.IPv4 || len(l4) < packet.SCTPHeaderLen+packet.SCTPChunkHeaderLen || binary.BigEndian.Uint16(l4[0:2]) != sport {
				return
			}
			s := packet.SCTP(l4)
			select { // never blocks the reader: the test reads each in turn
			case seen <- sctpSeen{server: role, chunk: s.ChunkType(), flags: s.ChunkFlags(), tag: s.VerificationTag()}:
			default:
			}
		})
	}
	fromClient, err := lab.NewRawSender(client.NS, client.Ifname, false)
	if err != nil {
		t.Fatal(err)
	}
	defer fromClient.Close()
	fromAttacker, err := lab.NewRawSender(attacker.NS, attacker.Ifname, false)
	if err != nil {
		t.Fatal(err)
	}
	defer fromAttacker.Close()

	const tag, initTag = 0x5ca1ab1e, 0x1badcafe
	base := packet.FrameSpec{Src: client.IPv4, Dst: e.vip, Proto: packet.ProtoSCTP, SrcPort: sport, DstPort: 7000, DstMAC: [6]byte(e.lab.LB().MAC)}
	// frame builds a packet of one chunk from the client's address and
	// port, sent from host from (its MAC).
	frame := func(from lab.Host, chunk uint8, vtag uint32, tbit bool) []byte {
		s := base
		s.SrcMAC, s.SCTPChunk, s.SCTPTag = [6]byte(from.MAC), chunk, vtag
		switch chunk {
		case packet.SCTPChunkInit: // initiate tag, a_rwnd, streams, initial TSN
			s.Payload = binary.BigEndian.AppendUint32(nil, initTag)
			s.Payload = binary.BigEndian.AppendUint32(s.Payload, 65536)
			s.Payload = append(s.Payload, 0, 1, 0, 1)
			s.Payload = binary.BigEndian.AppendUint32(s.Payload, 1)
		case packet.SCTPChunkData: // TSN, stream, sequence, PPID, data
			s.Payload = append(make([]byte, 12), "spoof"...)
		case packet.SCTPChunkShutdown: // cumulative TSN ack
			s.Payload = make([]byte, 4)
		}
		b := pt.Encode(t, s)
		if tbit {
			l4 := packet.SCTP(b[packet.EthernetHeaderLen+packet.IPv4MinHeaderLen:])
			l4[packet.SCTPHeaderLen+1] |= 1
			l4.SetChecksum(l4.ComputeChecksum())
		}
		return b
	}
	// expect sends b and returns the server that received it, failing
	// unless it arrived as sent.
	expect := func(what string, from *lab.RawSender, b []byte) string {
		t.Helper()
		if err := from.Send(b); err != nil {
			t.Fatal(err)
		}
		l4 := packet.SCTP(b[packet.EthernetHeaderLen+packet.IPv4MinHeaderLen:])
		want := sctpSeen{chunk: l4.ChunkType(), flags: l4.ChunkFlags(), tag: l4.VerificationTag()}
		select {
		case s := <-seen:
			if s.chunk != want.chunk || s.flags != want.flags || s.tag != want.tag {
				t.Fatalf("%s: a server received %v, want %v", what, s, want)
			}
			return s.server
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no server received it within 5s; counters: %+v", what, e.spoofCounters())
		}
		return ""
	}

	home := expect("client's INIT", fromClient, frame(client, packet.SCTPChunkInit, 0, false))
	for i := range 2 { // the first learns the tag, the next proves it
		if got := expect(fmt.Sprintf("client's DATA %d", i+1), fromClient, frame(client, packet.SCTPChunkData, tag, false)); got != home {
			t.Fatalf("client's DATA %d reached %s, want %s (where its INIT went)", i+1, got, home)
		}
	}
	other, w1, w2 := "s2", 0, 1
	if home == "s2" {
		other, w1, w2 = "s1", 1, 0
	}
	e.writeConfig(cfg(w1, w2))
	e.reload("sighup")
	t.Logf("association on %s; after the reload new associations go to %s", home, other)

	before := e.spoofCounters()
	forged := []struct {
		name  string
		chunk uint8
		tag   uint32
		tbit  bool
	}{
		{"ABORT with a wrong tag", packet.SCTPChunkAbort, tag + 1, false},
		{"ABORT with the tag and the T bit", packet.SCTPChunkAbort, tag, true},
		{"SHUTDOWN with a wrong tag", packet.SCTPChunkShutdown, ^uint32(tag), false},
		{"SHUTDOWN COMPLETE with a wrong tag", packet.SCTPChunkShutdownComplete, initTag, false},
	}
	for range soakFactor() { // $IPFRONT_SOAK repeats the forgeries
		for _, f := range forged {
			if got := expect("forged "+f.name, fromAttacker, frame(attacker, f.chunk, f.tag, f.tbit)); got != home {
				t.Errorf("forged %s reached %s, want %s (the association's server)", f.name, got, home)
			}
			if got := expect("INIT after the forged "+f.name, fromAttacker, frame(attacker, packet.SCTPChunkInit, 0, false)); got != home {
				t.Errorf("forged INIT after a forged %s reached %s, want %s: the association moved", f.name, got, home)
			}
		}
	}
	if got := expect("client's DATA after the attack", fromClient, frame(client, packet.SCTPChunkData, tag, false)); got != home {
		t.Errorf("client's DATA after the attack reached %s, want %s: the association moved", got, home)
	}
	// The workers publish their counters in batches: wait for the count,
	// then require it exact.
	want := uint64(len(forged) * soakFactor())
	var after spoofCounters
	e.waitFor(5*time.Second, "every forged teardown counted", func() (bool, string) {
		after = e.spoofCounters()
		return after.SCTPTagMismatch-before.SCTPTagMismatch >= want, fmt.Sprintf("sctp_tag_mismatch +%d, want +%d", after.SCTPTagMismatch-before.SCTPTagMismatch, want)
	})
	if got := after.SCTPTagMismatch - before.SCTPTagMismatch; got != want {
		t.Errorf("sctp_tag_mismatch rose by %d, want %d (every forged teardown)", got, want)
	}
	if r, n := after.Reselected-before.Reselected, after.NewAssociations-before.NewAssociations; r != 0 || n != 0 {
		t.Errorf("reselected rose by %d and new_associations by %d during the attack, want 0 and 0: the association moved", r, n)
	}

	// The client's own teardown is taken: its next INIT re-selects.
	if got := expect("client's ABORT", fromClient, frame(client, packet.SCTPChunkAbort, tag, false)); got != home {
		t.Errorf("client's ABORT reached %s, want %s", got, home)
	}
	if got := expect("client's INIT after its ABORT", fromClient, frame(client, packet.SCTPChunkInit, 0, false)); got != other {
		t.Errorf("client's INIT after its own ABORT reached %s, want %s (re-selected by the new weights)", got, other)
	}
}
