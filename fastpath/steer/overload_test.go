//go:build linux

package steer_test

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/internal/netnstest"
)

const xdpVerdictDrop = 1

// l4Frame is a frame from the peer to dst:80 whose transport header is
// rewritten to protocol proto with byte at (offset from the transport
// header) set to val: a TCP header's flags (13), an SCTP first chunk's type
// (12). The UDP frame underneath carries enough payload for either.
func l4Frame(dst netip.Addr, proto byte, offset int, val byte) []byte {
	src, l4, protoAt := peer4, 14+20, 14+9
	if dst.Is6() {
		src, l4, protoAt = peer6, 14+40, 14+6
	}
	f := netnstest.Frame{Src: netip.AddrPortFrom(src, 1234), Dst: netip.AddrPortFrom(dst, 80), Payload: make([]byte, 24)}.Encode()
	f[protoAt] = proto
	f[l4+offset] = val
	return f
}

// TestOverloadShedding: while a queue's cell says shedding, openings to a
// VIP (TCP SYN, SCTP INIT, over IPv4 and IPv6) are dropped and counted, and
// every other frame to a VIP still goes to the socket; a normal cell sheds
// nothing.
func TestOverloadShedding(t *testing.T) {
	l := newLab(t)
	if err := l.prog.SetVIPs([]netip.Addr{vip4, vip6}); err != nil {
		t.Fatal(err)
	}
	cell, err := l.prog.Overload(0)
	if err != nil {
		t.Fatal(err)
	}
	const tcp, udp, sctp = 6, 17, 132
	syn, synAck, ack := byte(0x02), byte(0x12), byte(0x10)
	nonFirstFragment := l4Frame(vip4, tcp, 13, syn)
	nonFirstFragment[14+6], nonFirstFragment[14+7] = 0x00, 0x10 // offset 16 (x8 bytes)
	shortTCP := l4Frame(vip4, tcp, 13, syn)[:14+20+13]
	opening := []struct {
		name  string
		frame []byte
		shed  bool
	}{
		{"IPv4 SYN", l4Frame(vip4, tcp, 13, syn), true},
		{"IPv6 SYN", l4Frame(vip6, tcp, 13, syn), true},
		{"IPv4 SCTP INIT", l4Frame(vip4, sctp, 12, 1), true},
		{"IPv6 SCTP INIT", l4Frame(vip6, sctp, 12, 1), true},
		{"SYN-ACK", l4Frame(vip4, tcp, 13, synAck), false},
		{"ACK", l4Frame(vip4, tcp, 13, ack), false},
		{"IPv6 ACK", l4Frame(vip6, tcp, 13, ack), false},
		{"SCTP DATA", l4Frame(vip4, sctp, 12, 0), false},
		{"UDP", l4Frame(vip4, udp, 13, syn), false},
		{"non-first fragment", nonFirstFragment, false},
		{"TCP header cut short", shortTCP, false},
	}
	run := func(f []byte) uint32 {
		t.Helper()
		v, err := l.prog.Program().Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	shedCount := func() uint64 {
		t.Helper()
		st, err := l.prog.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.ShedOpenings
	}
	check := func(state string, shedding bool) {
		t.Helper()
		before, want := shedCount(), uint64(0)
		for _, tc := range opening {
			verdict := uint32(xdpVerdictRedirect)
			if shedding && tc.shed {
				verdict = xdpVerdictDrop
				want++
			}
			if got := run(tc.frame); got != verdict {
				t.Errorf("%s, %s: verdict %d, want %d", state, tc.name, got, verdict)
			}
		}
		// A SYN for an address that is not a VIP is never the program's.
		if got := run(l4Frame(lbAddr4, tcp, 13, syn)); got != xdpVerdictPass {
			t.Errorf("%s, SYN to a non-VIP: verdict %d, want pass", state, got)
		}
		if got := shedCount() - before; got != want {
			t.Errorf("%s: ShedOpenings +%d, want +%d", state, got, want)
		}
	}
	check("normal", false)
	cell.SetState(steer.OverloadShedding)
	check("shedding", true)
	cell.SetState(steer.OverloadNormal)
	check("normal again", false)

	if _, err := l.prog.Overload(1); err == nil {
		t.Error("Overload(1) on a program for one queue: no error")
	}
}
