//go:build linux

package decap

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/internal/netnstest"
)

var (
	lbMAC  = [6]byte{0x02, 0x1b, 0, 0, 0, 0x01}
	srvMAC = [6]byte{0x02, 0x1b, 0, 0, 0, 0x21}
	client = netip.MustParseAddr("203.0.113.2")
	vip4   = netip.MustParseAddr("192.0.2.10")
	vip6   = netip.MustParseAddr("2001:db8::10")
	out4   = [2]netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.21")}
	out6   = [2]netip.Addr{netip.MustParseAddr("2001:db8:e::7"), netip.MustParseAddr("2001:db8:21::21")}
)

// inner is the client's frame as the server must receive it: from the
// router (here: ipfront's MAC, which the outer frame carried) to the VIP.
func inner(t *testing.T, v6 bool) []byte {
	t.Helper()
	s := packet.FrameSpec{SrcMAC: lbMAC, DstMAC: srvMAC, Src: client, Dst: vip4, Proto: packet.ProtoTCP,
		SrcPort: 40000, DstPort: 80, TCPFlags: packet.TCPFlagSYN, Seq: 1, Payload: []byte("hello")}
	if v6 {
		s.Src, s.Dst = netip.MustParseAddr("2001:db8:c::2"), vip6
	}
	buf := make([]byte, 256)
	n, err := packet.Encode(buf, &s)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// wrap builds the outer frame around in (an Ethernet frame): outer IPv6 if
// v6, protocol proto, and l4 (UDP and GUE headers, or nothing) between.
func wrap(in []byte, v6 bool, proto byte, l4 []byte) []byte {
	payload := append(append([]byte(nil), l4...), in[packet.EthernetHeaderLen:]...)
	if len(l4) >= 8 {
		binary.BigEndian.PutUint16(payload[4:], uint16(len(payload)))
	}
	out := append([]byte(nil), in[:12]...)
	if !v6 {
		out = binary.BigEndian.AppendUint16(out, 0x0800)
		ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
		ip = append(append(ip, out4[0].AsSlice()...), out4[1].AsSlice()...)
		binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip, 0))
		out = append(out, ip...)
	} else {
		out = binary.BigEndian.AppendUint16(out, 0x86dd)
		ip := []byte{0x60, 0, 0, 0, 0, 0, proto, 64}
		binary.BigEndian.PutUint16(ip[4:], uint16(len(payload)))
		ip = append(append(ip, out6[0].AsSlice()...), out6[1].AsSlice()...)
		out = append(out, ip...)
	}
	return append(out, payload...)
}

// gue returns UDP and GUE headers to port: variant 0 with protocol p, or,
// p == 0, variant 1 (no GUE header).
func gue(port uint16, p byte, first byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0xc123)
	b = binary.BigEndian.AppendUint16(b, port)
	b = append(b, 0, 0, 0, 0)
	if p != 0 || first != 0 {
		b = append(b, first, p, 0, 0)
	}
	return b
}

func load(t *testing.T, cfg Config) *Program {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	p, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// run runs the program on frame with BPF_PROG_TEST_RUN.
func run(t *testing.T, p *Program, frame []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(frame)+256)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	ret, err := p.prog.Run(opts)
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return ret, opts.DataOut
}

type decapCase struct {
	desc  string
	frame []byte
	want  []byte // nil: passed untouched
}

func check(t *testing.T, p *Program, cases []decapCase) {
	t.Helper()
	var want [NumCounters]uint64
	for _, c := range cases {
		ret, got := run(t, p, c.frame)
		exp := c.want
		if exp == nil {
			exp = c.frame
			want[CtrPassed]++
		} else {
			want[CtrDecapsulated]++
		}
		if ret != xdpPass || !bytes.Equal(got, exp) {
			t.Errorf("%s: verdict %d, frame\n%swant XDP_PASS and\n%s", c.desc, ret, hex.Dump(got), hex.Dump(exp))
		}
	}
	if got, err := p.Counters(); err != nil || got != want {
		t.Errorf("Counters() = %v, %v; want %v", got, err, want)
	}
}

// TestDecapIPIP: the four IP-in-IP combinations come out as the client's
// frame with the outer frame's MACs; anything else passes untouched.
func TestDecapIPIP(t *testing.T) {
	p := load(t, Config{Mode: ModeIPIP})
	in4, in6 := inner(t, false), inner(t, true)
	opts := wrap(in4, false, 4, nil)
	opts[14] = 0x46 // IHL 6: options (the program reads no options)
	frag := wrap(in4, false, 4, nil)
	frag[14+6] = 0x20 // MF
	check(t, p, []decapCase{
		{"IPv4 in IPv4", wrap(in4, false, 4, nil), in4},
		{"IPv6 in IPv4", wrap(in6, false, 41, nil), in6},
		{"IPv4 in IPv6", wrap(in4, true, 4, nil), in4},
		{"IPv6 in IPv6", wrap(in6, true, 41, nil), in6},
		{"a plain TCP packet", in4, nil},
		{"GUE is not IPIP", wrap(in4, false, 17, gue(6080, 4, 0)), nil},
		{"outer IPv4 options", opts, nil},
		{"outer fragment", frag, nil},
		{"truncated outer header", wrap(in4, false, 4, nil)[:30], nil},
	})
}

// TestDecapGUE: variant 0 (protocol 4 or 41) and variant 1 to the port are
// decapsulated over either outer family; another port, control messages,
// optional fields and IPIP pass untouched.
func TestDecapGUE(t *testing.T) {
	p := load(t, Config{Mode: ModeGUE, Port: 6080})
	in4, in6 := inner(t, false), inner(t, true)
	check(t, p, []decapCase{
		{"IPv4 in GUE over IPv4", wrap(in4, false, 17, gue(6080, 4, 0)), in4},
		{"IPv6 in GUE over IPv4", wrap(in6, false, 17, gue(6080, 41, 0)), in6},
		{"IPv4 in GUE over IPv6", wrap(in4, true, 17, gue(6080, 4, 0)), in4},
		{"IPv6 in GUE over IPv6", wrap(in6, true, 17, gue(6080, 41, 0)), in6},
		{"variant 1 IPv4", wrap(in4, false, 17, gue(6080, 0, 0)), in4},
		{"variant 1 IPv6", wrap(in6, true, 17, gue(6080, 0, 0)), in6},
		{"another UDP port", wrap(in4, false, 17, gue(6081, 4, 0)), nil},
		{"control message (C bit)", wrap(in4, false, 17, gue(6080, 4, 0x20)), nil},
		{"optional fields (Hlen 1)", wrap(in4, false, 17, gue(6080, 4, 0x01)), nil},
		{"unknown inner protocol", wrap(in4, false, 17, gue(6080, 47, 0)), nil},
		{"IPIP is not GUE", wrap(in4, false, 4, nil), nil},
		{"truncated GUE header", wrap(in4, false, 17, gue(6080, 4, 0))[:14+20+8+2], nil},
	})
}

// TestLoadRefuses: GUE needs its port.
func TestLoadRefuses(t *testing.T) {
	if _, err := Load(Config{Mode: ModeGUE}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Load(GUE without a port) = %v, want ErrBadConfig", err)
	}
}

// TestAttachDetach: attach leaves the program on the interface after the
// loader is gone (its counters readable by Status), a second attach replaces
// it, detach removes it, and another XDP program is neither replaced nor
// removed.
func TestAttachDetach(t *testing.T) {
	netnstest.RequireRoot(t)
	a, b := netnstest.New(t, "dcp"), netnstest.New(t, "dcq")
	netnstest.Veth(t, a, "eth0", b, "eth0")
	err := a.Do(func() error {
		if _, err := Attach("eth0", Config{Mode: ModeGUE, Port: 6080}, AttachAuto); err != nil {
			return err
		}
		if _, ok, err := Status("eth0"); !ok || err != nil {
			t.Errorf("Status after Attach = %v, %v; want attached", ok, err)
		}
		if _, err := Attach("eth0", Config{Mode: ModeIPIP}, AttachAuto); err != nil {
			t.Errorf("second Attach = %v, want it replaced", err)
		}
		if ok, err := Detach("eth0"); !ok || err != nil {
			t.Errorf("Detach = %v, %v; want true, nil", ok, err)
		}
		if _, ok, err := Status("eth0"); ok || err != nil {
			t.Errorf("Status after Detach = %v, %v; want none", ok, err)
		}
		if ok, err := Detach("eth0"); ok || err != nil {
			t.Errorf("Detach of nothing = %v, %v; want false, nil", ok, err)
		}
		// Someone else's program.
		other, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "other", Type: ebpf.XDP, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()}})
		if err != nil {
			return err
		}
		defer other.Close()
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetXdpFdWithFlags(l, other.FD(), nl.XDP_FLAGS_SKB_MODE); err != nil {
			return err
		}
		if _, err := Attach("eth0", Config{Mode: ModeIPIP}, AttachAuto); !errors.Is(err, ErrOtherProgram) {
			t.Errorf("Attach over another program = %v, want ErrOtherProgram", err)
		}
		if _, err := Detach("eth0"); !errors.Is(err, ErrOtherProgram) {
			t.Errorf("Detach of another program = %v, want ErrOtherProgram", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
