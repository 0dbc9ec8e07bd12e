package fastpath

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// TestLearnedClientHop: the server's reply to an on-link client whose
// neighbour entry the slow path has not published yet goes to the MAC the
// client's own frame came from, learned by the worker that received it;
// without such a frame it is dropped as neighbor_unresolved.
func TestLearnedClientHop(t *testing.T) {
	clientMAC := [6]byte{0x02, 0xcc, 0, 0, 0, 7}
	for _, learned := range []bool{true, false} {
		tab := natTables(t)
		for _, ts := range tab.Sets() {
			for s := range ts.Servers {
				ts.Servers[s].Egress = 1
			}
		}
		r, err := NewRoutes([]Route{{Prefix: MappedPrefix(netip.MustParsePrefix("203.0.113.0/24")), Iface: 0, OnLink: true}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tab.Routes.Store(r)
		var engines []*Engine
		for i := range 2 {
			s, _ := assoc.NewShard(64)
			e := NewEngine(s, i, [][6]byte{otherMAC, lbMAC}[i])
			e.SetTables(tab)
			engines = append(engines, e)
		}
		for _, e := range engines {
			e.setNATPeers(engines)
			e.SetInterfaces([][6]byte{otherMAC, lbMAC})
		}
		a, b := engines[0], engines[1]
		syn := packet.FrameSpec{SrcMAC: clientMAC, DstMAC: otherMAC, Src: natC4, Dst: vip4, Proto: packet.ProtoTCP,
			SrcPort: 40000, DstPort: vipPort, TCPFlags: packet.TCPFlagSYN}
		if learned {
			if act := send(a, 1, encode(t, syn))[0]; act != Transmit {
				t.Fatalf("SYN: verdict %d, want Transmit", act)
			}
		}
		rep := packet.FrameSpec{SrcMAC: lbMAC, DstMAC: lbMAC, Src: natServer(natSetV4, 0, false), Dst: natC4,
			Proto: packet.ProtoTCP, SrcPort: vipPort, DstPort: 40000, TCPFlags: packet.TCPFlagSYN | packet.TCPFlagACK}
		frame := encode(t, rep)
		act := send(b, 1, frame)[0]
		if !learned {
			if act != Drop || published(b).Drops[DropNeighborUnresolved] != 1 {
				t.Errorf("unlearned client: verdict %d, neighbor_unresolved %d; want Drop, 1", act, published(b).Drops[DropNeighborUnresolved])
			}
			continue
		}
		if act != Transmit {
			t.Fatalf("reply: verdict %d, want Transmit (drops %v)", act, published(b).Drops)
		}
		if eg, cross := b.takeEgress(0); !cross || eg != 0 {
			t.Errorf("reply egress = %d (cross %v), want interface 0", eg, cross)
		}
		if eth := packet.Ethernet(frame); eth.Dst() != clientMAC || eth.Src() != otherMAC {
			t.Errorf("reply MACs %x -> %x, want %x -> %x", eth.Src(), eth.Dst(), otherMAC, clientMAC)
		}
	}
}

// TestLearnTableConsistent: readers racing the owner's writes never see a
// client with another client's hop (run with -race).
func TestLearnTableConsistent(t *testing.T) {
	var l learnTable
	addrs := make([][16]byte, 1024) // four per slot on average: slots are rewritten constantly
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}).As16()
	}
	macOf := func(a *[16]byte) [6]byte { return [6]byte{2, 0, 0, 0, a[14], a[15]} }
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			default:
			}
			a := &addrs[n%len(addrs)]
			l.learn(a, n%2, macOf(a))
		}
	}()
	for range 200000 {
		for i := range 8 {
			a := &addrs[(i*131)%len(addrs)]
			if h, ok := l.lookup(a); ok && h.MAC != macOf(a) {
				close(done)
				wg.Wait()
				t.Fatalf("lookup(%v) = %x, want %x", netip.AddrFrom16(*a).Unmap(), h.MAC, macOf(a))
			}
		}
	}
	close(done)
	wg.Wait()
}
