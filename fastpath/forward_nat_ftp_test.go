package fastpath

import (
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// ftpTwoTables is natTables with the two-server set given the FTP helper,
// so that a data connection's expectation and an older record of the same
// client port can name different servers.
func ftpTwoTables(t *testing.T) *Tables {
	t.Helper()
	tab := natTables(t)
	sets := tab.Sets()
	for _, ts := range sets {
		if ts.ID == natSetTwo {
			ts.Helper, ts.ReturnPorts = HelperFTP, []PortRange{{First: 20, Last: 20}}
		}
	}
	nt, err := NewTables(3, sets)
	if err != nil {
		t.Fatal(err)
	}
	nt.Routes = tab.Routes
	return nt
}

// twoWorkers are a client-side and a server-side engine reading each
// other's shards, as the workers of a two-armed setup.
func twoWorkers(t *testing.T, tab *Tables) (client, server *Engine) {
	client, server = newEngine(t, 64, tab), newEngine(t, 64, tab)
	for _, e := range []*Engine{client, server} {
		e.SetPeers([]*assoc.Shard{client.Shard(), server.Shard()})
		e.SetInterfaces([][6]byte{otherMAC, lbMAC})
	}
	return client, server
}

func insert(t *testing.T, e *Engine, k assoc.Key, v assoc.Value) {
	t.Helper()
	if r := e.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: v}); r != ControlApplied {
		t.Fatalf("ApplyControl(insert %+v) = %d, want applied", k, r)
	}
}

// TestNATDataConnectionReusedPort: a client reuses a source port towards
// another destination (Linux does, across destination ports), so a finished
// connection's record of that port may name another server than the data
// connection's expectation. The SYN follows the expectation, replacing the
// record, and the server's answers find the new flow even while the old
// record lingers in another worker's shard.
func TestNATDataConnectionReusedPort(t *testing.T) {
	tab := ftpTwoTables(t)
	s0, s1 := natServer(natSetTwo, 0, false), natServer(natSetTwo, 1, false)
	flow := func(port uint16) assoc.Key {
		return assoc.Key{Addr: natC4.As16(), Port: port, Proto: packet.ProtoTCP, Set: natSetTwo}
	}
	expect := func(port uint16) assoc.Key {
		k := flow(port)
		k.Kind = assoc.KindExpect
		return k
	}
	dst := func(frame []byte) netip.Addr {
		return netip.AddrFrom4(packet.IPv4(frame[packet.EthernetHeaderLen:]).Dst())
	}
	src := func(frame []byte) netip.Addr {
		return netip.AddrFrom4(packet.IPv4(frame[packet.EthernetHeaderLen:]).Src())
	}

	t.Run("passive", func(t *testing.T) {
		client, server := twoWorkers(t, tab)
		// Port 40010's last connection went to server 1; the control
		// connection on server 0 announced VIP:30001.
		insert(t, client, flow(40010), assoc.Value{Server: 1, Gen: 1, NAT: true, LastSeen: 1})
		insert(t, server, expect(30001), assoc.Value{Server: 0, Gen: 1, NAT: true, LastSeen: 1})
		syn := encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC4, Dst: natVIPTwo, Proto: packet.ProtoTCP,
			SrcPort: 40010, DstPort: 30001, TCPFlags: packet.TCPFlagSYN, Seq: 1})
		if act := send(client, 2, syn)[0]; act != Transmit || dst(syn) != s0 {
			t.Fatalf("SYN to VIP:30001: verdict %d to %s, want Transmit to server 0 %s", act, dst(syn), s0)
		}
		if v, ok := client.Shard().Get(ptr(flow(40010))); !ok || v.Server != 0 {
			t.Fatalf("record of port 40010 = %+v, %v, want server 0", v, ok)
		}
		synack := encode(t, packet.FrameSpec{SrcMAC: lbMAC, DstMAC: lbMAC, Src: s0, Dst: natC4, Proto: packet.ProtoTCP,
			SrcPort: 30001, DstPort: 40010, TCPFlags: packet.TCPFlagSYN | packet.TCPFlagACK, Seq: 9, Ack: 2})
		if act := send(server, 2, synack)[0]; act != Transmit || src(synack) != natVIPTwo {
			t.Fatalf("server 0's SYN-ACK: verdict %d from %s, want Transmit from the VIP", act, src(synack))
		}
		if n := published(client).ExpectUsed; n != 1 {
			t.Errorf("ExpectUsed = %d, want 1", n)
		}
	})

	t.Run("active", func(t *testing.T) {
		client, server := twoWorkers(t, tab)
		// Port 50000's last connection (a control connection) went to
		// server 0 and its record stays in the client side's shard;
		// server 1's control connection announced PORT ...50000.
		insert(t, client, flow(50000), assoc.Value{Server: 0, Gen: 1, NAT: true, LastSeen: 1})
		insert(t, server, expect(50000), assoc.Value{Server: 1, Gen: 1, NAT: true, LastSeen: 1, Flags: ExpectActive, Tag: 20})
		syn := encode(t, packet.FrameSpec{SrcMAC: lbMAC, DstMAC: lbMAC, Src: s1, Dst: natC4, Proto: packet.ProtoTCP,
			SrcPort: 20, DstPort: 50000, TCPFlags: packet.TCPFlagSYN, Seq: 9})
		if act := send(server, 2, syn)[0]; act != Transmit || src(syn) != natVIPTwo {
			t.Fatalf("server 1's SYN from port 20: verdict %d from %s, want Transmit from the VIP", act, src(syn))
		}
		// Its next segment finds its own flow past the old record.
		ack := encode(t, packet.FrameSpec{SrcMAC: lbMAC, DstMAC: lbMAC, Src: s1, Dst: natC4, Proto: packet.ProtoTCP,
			SrcPort: 20, DstPort: 50000, TCPFlags: packet.TCPFlagACK, Seq: 10, Ack: 78})
		if act := send(client, 2, ack)[0]; act != Transmit || src(ack) != natVIPTwo {
			t.Fatalf("server 1's ACK on the client side's worker: verdict %d from %s, want Transmit from the VIP", act, src(ack))
		}
	})
}

func ptr(k assoc.Key) *assoc.Key { return &k }
