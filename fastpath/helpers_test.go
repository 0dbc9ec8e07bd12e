package fastpath

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// Fixture addresses. Clients talk to the VIPs; routers send ICMP errors about
// the servers' replies, which left from the VIP.
var (
	lbMAC     = [6]byte{0x02, 0x1b, 0, 0, 0, 0x01} // the engine's interface
	routerMAC = [6]byte{0x02, 0xee, 0, 0, 0, 0x01} // the next hop clients come through

	vip4    = netip.MustParseAddr("192.0.2.10")
	vip6    = netip.MustParseAddr("2001:db8::10")
	router4 = netip.MustParseAddr("198.51.100.1")
	router6 = netip.MustParseAddr("2001:db8:ff::1")
)

const (
	// testIface is the engine's interface index. Not 0, so a rewrite that
	// takes a server's MAC for the wrong interface shows.
	testIface = 1
	vipPort   = 80
	sctpPort  = 3868 // Diameter
	testAge   = 30   // DeleteAge of the fixture sets unless given

	// clockMask is the association clock's range: assoc.Now counts seconds
	// in 22 bits, MaxAge is half of that.
	clockMask = 2*assoc.MaxAge + 1
)

// srv describes one server slot for buildTables.
type srv struct {
	weight   uint32
	gen      uint32 // 0 means 1
	absent   bool   // Present false: the slot holds no server (and no Maglev share)
	reselect bool
	noMAC    bool   // HasMAC false on every interface
	key      string // Maglev key; default "10.<set>.0.<slot+1>:<port>"
}

// setSpec describes one target set for buildTables.
type setSpec struct {
	id        uint16
	vip       netip.Addr
	protos    uint8       // ProtoBit* mask; 0 means TCP
	ports     []PortRange // nil means vipPort only
	deleteAge uint32      // 0 means testAge
	synAge    uint32      // 0 means deleteAge
	servers   []srv
}

// weighted returns servers of the given weights, all generation 1.
func weighted(ws ...uint32) []srv {
	s := make([]srv, len(ws))
	for i, w := range ws {
		s[i] = srv{weight: w}
	}
	return s
}

// serverMAC is the MAC of slot of set, generation gen, on interface iface:
// every one distinct, and readable back from a rewritten frame.
func serverMAC(set uint16, slot int, gen uint32, iface int) [6]byte {
	return [6]byte{0x02, byte(iface), byte(set), byte(slot), byte(gen >> 8), byte(gen)}
}

// buildTables builds a generation of tables the way the slow path does: one
// Maglev backend per slot (so backend index = slot), absent slots weighted 0,
// MACs resolved on every interface unless noMAC.
func buildTables(tb testing.TB, gen uint64, specs ...setSpec) *Tables {
	tb.Helper()
	var sets []*TargetSet
	for _, sp := range specs {
		if len(sp.servers) > MaxServers {
			tb.Fatalf("set %d: %d servers, at most %d", sp.id, len(sp.servers), MaxServers)
		}
		ts := &TargetSet{
			ID: sp.id, Name: fmt.Sprintf("set%d", sp.id), VIP: sp.vip.As16(),
			Protos: sp.protos, Ports: sp.ports, DeleteAge: sp.deleteAge, SynAge: sp.synAge,
		}
		if ts.Protos == 0 {
			ts.Protos = ProtoBitTCP
		}
		if ts.Ports == nil {
			ts.Ports = []PortRange{{vipPort, vipPort}}
		}
		if ts.DeleteAge == 0 {
			ts.DeleteAge = testAge
		}
		backends := make([]maglev.Backend, len(sp.servers))
		for slot, s := range sp.servers {
			g := s.gen
			if g == 0 {
				g = 1
			}
			key := s.key
			if key == "" {
				key = fmt.Sprintf("10.%d.0.%d:%d", sp.id, slot+1, ts.Ports[0].First)
			}
			backends[slot] = maglev.Backend{Key: key, Weight: s.weight}
			if s.absent {
				backends[slot].Weight = 0
				continue
			}
			sv := &ts.Servers[slot]
			sv.Name, sv.Gen, sv.Weight, sv.Present, sv.Reselect = key, g, s.weight, true, s.reselect
			sv.Addr = netip.AddrFrom4([4]byte{10, byte(sp.id), 0, byte(slot + 1)})
			for i := range MaxInterfaces {
				sv.MAC[i] = serverMAC(sp.id, slot, g, i)
				sv.HasMAC[i] = !s.noMAC
			}
		}
		m, err := maglev.New(backends, maglev.DefaultSize)
		if err != nil {
			tb.Fatalf("maglev.New(set %d) error: %v", sp.id, err)
		}
		ts.Maglev = m
		sets = append(sets, ts)
	}
	t, err := NewTables(gen, sets)
	if err != nil {
		tb.Fatalf("NewTables error: %v", err)
	}
	return t
}

// newEngine returns an engine on testIface with a shard of limit associations,
// using t.
func newEngine(tb testing.TB, limit int, t *Tables) *Engine {
	tb.Helper()
	s, err := assoc.NewShard(limit)
	if err != nil {
		tb.Fatalf("NewShard(%d) error: %v", limit, err)
	}
	e := NewEngine(s, testIface, lbMAC)
	e.SetTables(t)
	return e
}

// encode builds the frame s describes.
func encode(tb testing.TB, s packet.FrameSpec) []byte {
	tb.Helper()
	buf := make([]byte, 128+len(s.Quote)+len(s.Payload))
	n, err := packet.Encode(buf, &s)
	if err != nil {
		tb.Fatalf("Encode(%+v) error: %v", s, err)
	}
	return buf[:n:n]
}

// client returns the i-th fixture client address of a family: 100.64/10 for
// IPv4, 2001:db8:c::/48 for IPv6.
func client(v6 bool, i int) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 10: byte(i >> 24), 11: byte(i >> 16), 12: byte(i >> 8), 13: byte(i)})
	}
	return netip.AddrFrom4([4]byte{100, 64 | byte(i>>16)&0x3f, byte(i >> 8), byte(i)})
}

// tcpTo returns a TCP frame from c:port to vip:vport with the given flags.
func tcpTo(tb testing.TB, c netip.Addr, port uint16, vip netip.Addr, vport uint16, flags uint8) []byte {
	tb.Helper()
	return encode(tb, packet.FrameSpec{
		SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip, Proto: packet.ProtoTCP,
		SrcPort: port, DstPort: vport, TCPFlags: flags, Seq: 1000, Ack: 2000,
	})
}

// tcp returns a TCP frame from c:port to the VIP of c's family, port 80.
func tcp(tb testing.TB, c netip.Addr, port uint16, flags uint8) []byte {
	tb.Helper()
	vip := vip4
	if c.Is6() {
		vip = vip6
	}
	return tcpTo(tb, c, port, vip, vipPort, flags)
}

// sctp returns an SCTP packet from c:port to vip4:sctpPort with one chunk.
func sctp(tb testing.TB, c netip.Addr, port uint16, chunk uint8, tag uint32) []byte {
	tb.Helper()
	s := packet.FrameSpec{
		SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4, Proto: packet.ProtoSCTP,
		SrcPort: port, DstPort: sctpPort, SCTPTag: tag, SCTPChunk: chunk,
		Payload: make([]byte, 16), // INIT's fixed fields; DATA's TSN, stream, SSN, PPID
	}
	return encode(tb, s)
}

// quote is the start of the packet a server sent from vip:vport to c:port,
// as an ICMP error about it quotes it: IP header and 8 bytes of TCP.
func quote(tb testing.TB, vip netip.Addr, c netip.Addr, port uint16) []byte {
	tb.Helper()
	b := tcpTo(tb, vip, vipPort, c, port, packet.TCPFlagACK|packet.TCPFlagPSH)[packet.EthernetHeaderLen:]
	hl := packet.IPv6HeaderLen
	if vip.Is4() {
		hl = packet.IPv4(b).HeaderLen()
	}
	return b[:hl+8]
}

// icmpError returns an ICMP error from a router to the VIP of c's family
// about the server's reply to c:port.
func icmpError(tb testing.TB, c netip.Addr, port uint16, typ, code uint8, rest uint32) []byte {
	tb.Helper()
	s := packet.FrameSpec{
		SrcMAC: routerMAC, DstMAC: lbMAC, Src: router4, Dst: vip4, Proto: packet.ProtoICMP,
		ICMPType: typ, ICMPCode: code, ICMPRest: rest,
	}
	if c.Is6() {
		s.Src, s.Dst, s.Proto = router6, vip6, packet.ProtoICMPv6
	}
	s.Quote = quote(tb, s.Dst, c, port)
	return encode(tb, s)
}

// echo returns an ICMP echo request from c to the VIP of its family.
func echo(tb testing.TB, c netip.Addr) []byte {
	tb.Helper()
	s := packet.FrameSpec{
		SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4, Proto: packet.ProtoICMP,
		ICMPType: packet.ICMPv4EchoRequest, ICMPRest: 1<<16 | 1, Payload: make([]byte, 32),
	}
	if c.Is6() {
		s.Dst, s.Proto, s.ICMPType = vip6, packet.ProtoICMPv6, packet.ICMPv6EchoRequest
	}
	return encode(tb, s)
}

// send processes frames in batches of at most 64 and returns their verdicts.
func send(e *Engine, now uint32, frames ...[]byte) []Action {
	acts := make([]Action, len(frames))
	for i := 0; i < len(frames); i += 64 {
		j := min(i+64, len(frames))
		e.Process(frames[i:j], acts[i:j], now)
	}
	return acts
}

// route processes one frame and returns the slot of the server it was sent
// to, read back from its rewritten destination MAC, or -1 if it was dropped.
func route(tb testing.TB, e *Engine, now uint32, frame []byte) int {
	tb.Helper()
	if send(e, now, frame)[0] != Transmit {
		return -1
	}
	return slotOf(tb, e, frame)
}

// slotOf reads the server slot back from a transmitted frame and checks the
// MAC is that server's, in the current tables, for the engine's interface.
func slotOf(tb testing.TB, e *Engine, frame []byte) int {
	tb.Helper()
	dst := packet.Ethernet(frame).Dst()
	set, slot := uint16(dst[2]), int(dst[3])
	ts := e.Tables().Set(set)
	if ts == nil || slot >= MaxServers || ts.Servers[slot].MAC[testIface] != dst {
		tb.Fatalf("transmitted frame has destination MAC %x, not a server's on interface %d", dst, testIface)
	}
	return slot
}

// published publishes e's counters and returns a snapshot.
func published(e *Engine) *Counters {
	e.Publish()
	c := new(Counters)
	e.Snapshot(c)
	return c
}

// maglevSlot is the slot Maglev gives the flow of c:port in ts: where a new
// or stateless flow goes.
func maglevSlot(ts *TargetSet, c netip.Addr, port uint16, proto uint8) int {
	return int(ts.Maglev.Lookup(maglev.Hash(c.As16(), port, proto)))
}

// key is the association key of c:port towards set.
func key(c netip.Addr, port uint16, proto uint8, set uint16) assoc.Key {
	return assoc.Key{Addr: c.As16(), Port: port, Proto: proto, Set: set}
}

// mover returns a client port, starting the search at from, whose flow from
// c Maglev puts on different servers in sets a and b, and those servers:
// the fixture that tells a kept association from a re-selected one.
func mover(tb testing.TB, a, b *TargetSet, c netip.Addr, proto uint8, from uint16) (port uint16, slotA, slotB int) {
	tb.Helper()
	for p := from; p < from+10000; p++ {
		sa, sb := maglevSlot(a, c, p, proto), maglevSlot(b, c, p, proto)
		if sa != sb && sa < MaxServers && sb < MaxServers {
			return p, sa, sb
		}
	}
	tb.Fatalf("no port from %d on whose flow the two tables disagree", from)
	return 0, 0, 0
}
