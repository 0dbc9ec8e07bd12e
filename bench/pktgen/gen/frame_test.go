package gen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/ipfront/ipfront/fastpath/packet"
)

var (
	client4 = netip.MustParseAddr("198.51.100.2")
	vip4    = netip.MustParseAddr("192.0.2.10")
	client6 = netip.MustParseAddr("2001:db8:100::2")
	vip6    = netip.MustParseAddr("2001:db8::10")
	macA    = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB    = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
)

var allProtos = []Proto{UDP, TCPSyn, TCPAck, SCTPData, SCTPInit}

func baseConfig(v6 bool, p Proto) Config {
	c := Config{
		SrcMAC: macA, DstMAC: macB, Src: client4, Dst: vip4, Dport: 7000, Proto: p,
		SrcCount: 3, SportFirst: 40000, SportCount: 5,
	}
	if v6 {
		c.Src, c.Dst = client6, vip6
	}
	return c
}

func famName(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// sum16 is an independent RFC 1071 sum (16-bit words, end-around carry).
func sum16(bs ...[]byte) uint16 {
	var s uint32
	for _, b := range bs {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// checkChecksums recomputes every checksum of frame from scratch.
func checkChecksums(t *testing.T, frame []byte) {
	t.Helper()
	var f packet.Flow
	if r := packet.Parse(frame, &f); r != packet.OK {
		t.Fatalf("Parse = %v, want OK", r)
	}
	ip := frame[f.L3Off : int(f.L3Off)+int(f.Len)]
	l4 := frame[f.L4Off : int(f.L3Off)+int(f.Len)]
	var pseudo []byte
	if f.Family == 4 {
		if s := sum16(ip[:20]); s != 0xffff {
			t.Errorf("IPv4 header sums to %#04x, want 0xffff", s)
		}
		pseudo = append(append([]byte{}, ip[12:20]...), 0, f.Proto, byte(len(l4)>>8), byte(len(l4)))
	} else {
		pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, f.Proto)
	}
	switch f.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		if s := sum16(pseudo, l4); s != 0xffff {
			t.Errorf("L4 checksum: segment and pseudo-header sum to %#04x, want 0xffff", s)
		}
		if f.Proto == packet.ProtoUDP && binary.BigEndian.Uint16(l4[6:8]) == 0 {
			t.Error("UDP checksum 0 (means none)")
		}
	case packet.ProtoSCTP:
		c := bytes.Clone(l4)
		clear(c[8:12])
		if got, want := binary.LittleEndian.Uint32(l4[8:12]), crc32.Checksum(c, crc32.MakeTable(crc32.Castagnoli)); got != want {
			t.Errorf("SCTP CRC32c = %#08x, want %#08x", got, want)
		}
	}
}

// TestBuildFrame: for every protocol, family and a range of sizes,
// BuildFrame's frame parses to the flow the config describes, with valid
// checksums and the requested length, and an independent decoder (gopacket)
// agrees on the protocol details.
func TestBuildFrame(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, p := range allProtos {
			for _, size := range []int{0, 64, 65, 66, 67, 69, 70, 77, 128, 1514} {
				cfg := baseConfig(v6, p)
				cfg.Size = size
				t.Run(fmt.Sprintf("%s/%v/%d", famName(v6), p, size), func(t *testing.T) {
					testBuildFrame(t, &cfg)
				})
			}
		}
	}
}

func testBuildFrame(t *testing.T, cfg *Config) {
	wantSize := cfg.Size
	if wantSize == 0 {
		wantSize = max(64, cfg.HeaderLen())
	}
	buf := bytes.Repeat([]byte{0xa5}, 2048) // dirty: BuildFrame writes every byte
	if wantSize < cfg.HeaderLen() {
		if _, err := BuildFrame(buf, cfg, 0); !errors.Is(err, ErrConfig) {
			t.Fatalf("BuildFrame(size %d < headers %d) = %v, want ErrConfig", wantSize, cfg.HeaderLen(), err)
		}
		return
	}
	for _, flow := range []int{0, 6, cfg.Flows() - 1} {
		n, err := BuildFrame(buf, cfg, flow)
		if err != nil || n != wantSize {
			t.Fatalf("BuildFrame(flow %d) = %d, %v; want %d, nil", flow, n, err, wantSize)
		}
		frame := buf[:n]
		wantSrc, wantPort, err := cfg.FlowTuple(flow)
		if err != nil {
			t.Fatal(err)
		}
		var f packet.Flow
		if r := packet.Parse(frame, &f); r != packet.OK {
			t.Fatalf("Parse(flow %d) = %v, want OK", flow, r)
		}
		wantFam := uint8(4)
		if cfg.Dst.Is6() {
			wantFam = 6
		}
		if f.Family != wantFam || f.SrcAddr() != wantSrc || f.DstAddr() != cfg.Dst || f.SrcPort != wantPort ||
			f.DstPort != cfg.Dport || f.Proto != cfg.Proto.ipProto() || f.ICMPError || f.VLAN != 0 {
			t.Errorf("Parse(flow %d) = %+v; want IPv%d %v:%d -> %v:%d proto %d",
				flow, f, wantFam, wantSrc, wantPort, cfg.Dst, cfg.Dport, cfg.Proto.ipProto())
		}
		if trailer := n - int(f.L3Off) - int(f.Len); trailer < 0 || trailer > 3 ||
			trailer > 0 && cfg.Proto != SCTPData && cfg.Proto != SCTPInit {
			t.Errorf("IP packet of %d bytes in a %d-byte frame: %d bytes of trailer", f.Len, n, trailer)
		}
		if !bytes.Equal(frame[0:6], macB[:]) || !bytes.Equal(frame[6:12], macA[:]) {
			t.Errorf("MACs %x -> %x", frame[6:12], frame[0:6])
		}
		switch cfg.Proto {
		case TCPSyn:
			if f.TCPFlags != packet.TCPFlagSYN {
				t.Errorf("TCP flags %#x, want SYN", f.TCPFlags)
			}
		case TCPAck:
			if f.TCPFlags != packet.TCPFlagACK {
				t.Errorf("TCP flags %#x, want ACK", f.TCPFlags)
			}
		case SCTPData:
			if f.SCTPChunk != packet.SCTPChunkData || f.SCTPTag != DefaultSCTPTag {
				t.Errorf("SCTP chunk %d tag %#x, want DATA, %#x", f.SCTPChunk, f.SCTPTag, DefaultSCTPTag)
			}
		case SCTPInit:
			if f.SCTPChunk != packet.SCTPChunkInit || f.SCTPTag != 0 {
				t.Errorf("SCTP chunk %d tag %#x, want INIT, 0", f.SCTPChunk, f.SCTPTag)
			}
		}
		checkChecksums(t, frame)
		checkGopacket(t, cfg, frame[:int(f.L3Off)+int(f.Len)])
	}
}

// checkGopacket decodes the IP packet with gopacket, a parser independent of
// ours, and checks the protocol details.
func checkGopacket(t *testing.T, cfg *Config, frame []byte) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	switch cfg.Proto {
	case UDP:
		if p.Layer(layers.LayerTypeUDP) == nil {
			t.Errorf("gopacket: no UDP layer in %v", p.Layers())
		}
	case TCPSyn, TCPAck:
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("gopacket: no TCP layer in %v", p.Layers())
		}
		syn := cfg.Proto == TCPSyn
		if tcp.SYN != syn || tcp.ACK == syn || tcp.FIN || tcp.RST || tcp.PSH || tcp.DataOffset != 5 ||
			tcp.Seq != DefaultTCPSeq || (!syn && tcp.Ack != DefaultTCPSeq) || (syn && tcp.Ack != 0) {
			t.Errorf("gopacket TCP %+v", tcp)
		}
	case SCTPData:
		d, ok := p.Layer(layers.LayerTypeSCTPData).(*layers.SCTPData)
		if !ok {
			t.Fatalf("gopacket: no SCTP DATA layer in %v", p.Layers())
		}
		if !d.BeginFragment || !d.EndFragment || d.Unordered || d.TSN != 1 {
			t.Errorf("gopacket SCTP DATA %+v", d)
		}
	case SCTPInit:
		in, ok := p.Layer(layers.LayerTypeSCTPInit).(*layers.SCTPInit)
		if !ok {
			t.Fatalf("gopacket: no SCTP INIT layer in %v", p.Layers())
		}
		if in.InitiateTag != DefaultSCTPTag || in.OutboundStreams == 0 || in.InboundStreams == 0 {
			t.Errorf("gopacket SCTP INIT %+v", in)
		}
		var padded int
		for _, prm := range in.Parameters {
			if prm.Type != sctpPaddingParam {
				t.Errorf("INIT parameter type %#x, want only Padding (%#x)", prm.Type, sctpPaddingParam)
			}
			padded += int(prm.Length)
		}
		if int(in.Length) != 20+padded {
			t.Errorf("INIT chunk length %d, parameters %d bytes", in.Length, padded)
		}
	}
}

func TestBuildFrameErrors(t *testing.T) {
	ok := baseConfig(false, UDP)
	for _, tc := range []struct {
		desc string
		mut  func(*Config)
		buf  int
		flow int
	}{
		{"mixed families", func(c *Config) { c.Dst = vip6 }, 2048, 0},
		{"no source", func(c *Config) { c.Src = netip.Addr{} }, 2048, 0},
		{"IPv4-mapped", func(c *Config) { c.Src, c.Dst = netip.AddrFrom16(client4.As16()), netip.AddrFrom16(vip4.As16()) }, 2048, 0},
		{"size below 60", func(c *Config) { c.Size = 59 }, 2048, 0},
		{"IPv6 TCP in 64 bytes", func(c *Config) { c.Src, c.Dst, c.Proto, c.Size = client6, vip6, TCPSyn, 64 }, 2048, 0},
		{"size above 4096", func(c *Config) { c.Size = 4097 }, 8192, 0},
		{"buffer too short", func(c *Config) {}, 63, 0},
		{"flow out of range", func(c *Config) {}, 2048, 15},
		{"negative flow", func(c *Config) {}, 2048, -1},
		{"addresses overflow", func(c *Config) { c.Src = netip.MustParseAddr("255.255.255.254") }, 2048, 0},
		{"IPv6 addresses overflow", func(c *Config) {
			c.Src, c.Dst = netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), vip6
		}, 2048, 0},
		{"ports overflow", func(c *Config) { c.SportFirst = 65534 }, 2048, 0},
		{"random too many flows", func(c *Config) { c.FlowOrder, c.SrcCount, c.SportCount = Random, 1<<10, 1<<15 }, 2048, 0},
		{"unknown proto", func(c *Config) { c.Proto = numProtos }, 2048, 0},
		{"batch above ring", func(c *Config) { c.Batch, c.Ring = 128, 64 }, 2048, 0},
		{"ring not a power of two", func(c *Config) { c.Ring = 1000 }, 2048, 0},
	} {
		c := ok
		tc.mut(&c)
		if n, err := BuildFrame(make([]byte, tc.buf), &c, tc.flow); err == nil || n != 0 || err.Error() == "" {
			t.Errorf("%s: BuildFrame = %d, %v; want an error", tc.desc, n, err)
		}
	}
	if n, err := BuildFrame(make([]byte, 64), &ok, 14); err != nil || n != 64 {
		t.Errorf("BuildFrame(ok, last flow) = %d, %v", n, err)
	}
}

// TestFillerMatchesBuildFrame: a frame patched by Fill, whatever flow it held
// before, is byte for byte BuildFrame's frame of the flow, for every protocol,
// family, a range of sizes, both orders and addresses and ports chosen to
// carry.
func TestFillerMatchesBuildFrame(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, v6 := range []bool{false, true} {
		for _, p := range allProtos {
			for _, size := range []int{0, 67, 301, 1514} {
				for _, order := range []FlowOrder{Seq, Random} {
					cfg := baseConfig(v6, p)
					cfg.Size, cfg.FlowOrder, cfg.Seed = size, order, rng.Uint64()
					if size != 0 && size < cfg.HeaderLen() {
						cfg.Size = cfg.HeaderLen() + 1 // shortest odd size
					}
					cfg.SrcCount, cfg.SportCount = 1+rng.IntN(40), 1+rng.IntN(40)
					cfg.SportFirst = uint16(65536 - cfg.SportCount - rng.IntN(3))
					cfg.Dport = uint16(rng.Uint32())
					cfg.SCTPTag = rng.Uint32() | 1
					cfg.TCPSeq = rng.Uint32() | 1
					if v6 {
						cfg.Src = netip.MustParseAddr("2001:db8:0:ffff:ffff:ffff:ffff:fff0")
					} else {
						cfg.Src = netip.MustParseAddr("198.51.100.240")
					}
					t.Run(fmt.Sprintf("%s/%v/%d/%v", famName(v6), p, size, order), func(t *testing.T) {
						testFillerMatches(t, &cfg)
					})
				}
			}
		}
	}
}

func testFillerMatches(t *testing.T, cfg *Config) {
	f, err := NewFiller(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var perm []uint32
	if cfg.FlowOrder == Random {
		perm = Permutation(cfg.Flows(), cfg.Seed)
	}
	frame := bytes.Clone(f.Template())
	want := make([]byte, len(frame))
	for i := range 2 * cfg.Flows() {
		flow := i % cfg.Flows()
		if perm != nil {
			flow = int(perm[flow])
		}
		f.Fill(frame)
		if _, err := BuildFrame(want, cfg, flow); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame, want) {
			t.Fatalf("packet %d (flow %d): Fill wrote\n%x\nBuildFrame builds\n%x", i, flow, frame, want)
		}
	}
	checkChecksums(t, frame)
}

// TestFillerUDPZeroChecksum: over all 65535 client ports the UDP checksum
// takes every value, including the one that must be sent as 0xffff.
func TestFillerUDPZeroChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		cfg := baseConfig(v6, UDP)
		cfg.SrcCount, cfg.SportFirst, cfg.SportCount = 1, 1, 65535
		f, err := NewFiller(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		frame, want := bytes.Clone(f.Template()), make([]byte, 64)
		l4 := l4Off4
		if v6 {
			l4 = l4Off6
		}
		var sawFFFF bool
		for i := range cfg.Flows() {
			f.Fill(frame)
			if _, err := BuildFrame(want, &cfg, i); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(frame, want) {
				t.Fatalf("%s flow %d: Fill wrote %x, BuildFrame %x", famName(v6), i, frame, want)
			}
			sawFFFF = sawFFFF || binary.BigEndian.Uint16(frame[l4+udpCsumOff:]) == 0xffff
		}
		if !sawFFFF {
			t.Errorf("%s: no port gave the UDP checksum 0xffff", famName(v6))
		}
	}
}

// TestFlowRotation: Seq covers every flow in order, twice in 2*flows
// packets; Random is a permutation per cycle, the same each cycle, fixed by
// the seed; the tuples follow the documented formula, carrying across
// octets, and the frames carry them.
func TestFlowRotation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		src       string
		dst       netip.Addr
		srcCount  int
		first     uint16
		portCount int
		want      []string // first flows, as addr:port
	}{
		{"ipv4 carry", "198.51.100.254", vip4, 3, 65533, 3,
			[]string{"198.51.100.254:65533", "198.51.100.254:65534", "198.51.100.254:65535",
				"198.51.100.255:65533", "198.51.100.255:65534", "198.51.100.255:65535",
				"198.51.101.0:65533", "198.51.101.0:65534", "198.51.101.0:65535"}},
		{"ipv4 carry two octets", "10.0.255.255", vip4, 2, 7, 1, []string{"10.0.255.255:7", "10.1.0.0:7"}},
		{"ipv6 carry", "2001:db8::ffff:ffff:ffff:ffff", vip6, 2, 100, 2,
			[]string{"[2001:db8::ffff:ffff:ffff:ffff]:100", "[2001:db8::ffff:ffff:ffff:ffff]:101",
				"[2001:db8:0:1::]:100", "[2001:db8:0:1::]:101"}},
		{"larger", "198.51.100.2", vip4, 37, 1000, 29, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Src: netip.MustParseAddr(tc.src), Dst: tc.dst, SrcCount: tc.srcCount, SportFirst: tc.first,
				SportCount: tc.portCount, Dport: 7000}
			flows := cfg.Flows()
			if flows != tc.srcCount*tc.portCount {
				t.Fatalf("Flows() = %d, want %d", flows, tc.srcCount*tc.portCount)
			}
			for i, w := range tc.want {
				a, p, err := cfg.FlowTuple(i)
				if err != nil || netip.AddrPortFrom(a, p).String() != w {
					t.Errorf("FlowTuple(%d) = %v, %d, %v; want %s", i, a, p, err, w)
				}
			}
			// The formula, by independent arithmetic.
			first := cfg.Src.As16()
			for i := range flows {
				a, p, _ := cfg.FlowTuple(i)
				want := first
				carry := uint16(i / tc.portCount)
				for j := 15; j >= 0 && carry > 0; j-- {
					s := uint16(want[j]) + carry
					want[j], carry = byte(s), s>>8
				}
				wantAddr := netip.AddrFrom16(want)
				if cfg.Src.Is4() {
					wantAddr = wantAddr.Unmap()
				}
				if a != wantAddr || p != tc.first+uint16(i%tc.portCount) {
					t.Fatalf("FlowTuple(%d) = %v:%d, want %v:%d", i, a, p, wantAddr, tc.first+uint16(i%tc.portCount))
				}
			}

			// Seq: in order, every flow twice, and the frames carry the tuples.
			seq := cfg
			f, err := NewFiller(&seq)
			if err != nil {
				t.Fatal(err)
			}
			seen := make([]int, flows)
			frame := bytes.Clone(f.Template())
			var pf packet.Flow
			for i := range 2 * flows {
				f.Fill(frame)
				if r := packet.Parse(frame, &pf); r != packet.OK {
					t.Fatalf("Parse = %v", r)
				}
				a, p, _ := cfg.FlowTuple(i % flows)
				if pf.SrcAddr() != a || pf.SrcPort != p {
					t.Fatalf("Seq packet %d carries %v:%d, want flow %d = %v:%d", i, pf.SrcAddr(), pf.SrcPort, i%flows, a, p)
				}
				seen[i%flows]++
			}
			for i, n := range seen {
				if n != 2 {
					t.Fatalf("Seq: flow %d sent %d times in %d packets, want 2", i, n, 2*flows)
				}
			}

			// Random: each cycle a permutation, the same each cycle and for
			// the same seed.
			rnd := cfg
			rnd.FlowOrder, rnd.Seed = Random, 42
			cycles := func(c Config) [][]int {
				f, err := NewFiller(&c)
				if err != nil {
					t.Fatal(err)
				}
				var out [][]int
				for range 3 {
					cyc := make([]int, flows)
					for i := range cyc {
						cyc[i] = f.Next()
					}
					out = append(out, cyc)
				}
				return out
			}
			a := cycles(rnd)
			for ci, cyc := range a {
				count := make([]int, flows)
				for _, fl := range cyc {
					if fl < 0 || fl >= flows {
						t.Fatalf("Random: flow %d out of range", fl)
					}
					count[fl]++
				}
				for fl, n := range count {
					if n != 1 {
						t.Fatalf("Random cycle %d: flow %d sent %d times, want 1", ci, fl, n)
					}
				}
				if fmt.Sprint(cyc) != fmt.Sprint(a[0]) {
					t.Fatalf("Random cycle %d differs from cycle 0", ci)
				}
			}
			if b := cycles(rnd); fmt.Sprint(a) != fmt.Sprint(b) {
				t.Error("Random order differs between two Fillers with the same seed")
			}
			if flows >= 8 {
				other := rnd
				other.Seed = 43
				if fmt.Sprint(cycles(other)[0]) == fmt.Sprint(a[0]) {
					t.Error("Random order is the same for seeds 42 and 43")
				}
				inOrder := true
				for i, fl := range a[0] {
					inOrder = inOrder && fl == i
				}
				if inOrder {
					t.Error("Random order is the identity")
				}
			}
		})
	}
}

// fakeUMEM is frames of 2048 bytes holding the template, like the socket's
// UMEM after New.
func fakeUMEM(tb testing.TB, f *Filler, frames int) [][]byte {
	tb.Helper()
	mem := make([]byte, frames*2048)
	out := make([][]byte, frames)
	for i := range out {
		out[i] = mem[i*2048 : (i+1)*2048 : (i+1)*2048]
		copy(out[i], f.Template())
	}
	return out
}

// TestFillZeroAllocs: the per-batch fill path allocates nothing.
func TestFillZeroAllocs(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, p := range []Proto{UDP, TCPSyn, SCTPData} {
			for _, order := range []FlowOrder{Seq, Random} {
				cfg := baseConfig(v6, p)
				cfg.FlowOrder, cfg.SrcCount, cfg.SportCount = order, 100, 100
				f, err := NewFiller(&cfg)
				if err != nil {
					t.Fatal(err)
				}
				umem := fakeUMEM(t, f, 256)
				next := 0
				allocs := testing.AllocsPerRun(200, func() {
					for range 64 {
						f.Fill(umem[next])
						next = (next + 1) % len(umem)
					}
				})
				if allocs != 0 {
					t.Errorf("%s/%v/%v: %v allocations per 64-frame batch, want 0", famName(v6), p, order, allocs)
				}
			}
		}
	}
}

// BenchmarkFill measures the per-packet fill without I/O: "patch" is what the
// generator does (Filler.Fill on frames holding the template), "copy-pool"
// the alternative of copying a pre-encoded frame per flow. Frames rotate
// through 4096 UMEM-like 2 KB buffers, as TX frames do.
func BenchmarkFill(b *testing.B) {
	type bc struct {
		v6     bool
		proto  Proto
		size   int
		flows  int // SrcCount = flows/256, SportCount = 256
		order  FlowOrder
		method string
	}
	var cases []bc
	for _, method := range []string{"patch", "copy-pool"} {
		for _, size := range []int{64, 1500} {
			for _, flows := range []int{1024, 1 << 16} {
				cases = append(cases, bc{false, UDP, size, flows, Seq, method})
			}
		}
	}
	cases = append(cases,
		bc{false, UDP, 64, 1 << 16, Random, "patch"},
		bc{true, UDP, 64, 1 << 16, Seq, "patch"},
		bc{false, TCPSyn, 64, 1 << 16, Seq, "patch"},
		bc{false, SCTPData, 64, 1 << 16, Seq, "patch"},
		bc{false, UDP, 64, 1 << 20, Random, "patch"},
		bc{false, UDP, 64, 1 << 20, Random, "copy-pool"},
	)
	for _, c := range cases {
		name := fmt.Sprintf("%s/%s/%v/%dB/%dflows/%v", c.method, famName(c.v6), c.proto, c.size, c.flows, c.order)
		b.Run(name, func(b *testing.B) {
			cfg := baseConfig(c.v6, c.proto)
			cfg.Size, cfg.FlowOrder, cfg.SrcCount, cfg.SportCount = c.size, c.order, c.flows/256, 256
			f, err := NewFiller(&cfg)
			if err != nil {
				b.Fatal(err)
			}
			umem := fakeUMEM(b, f, 4096)
			var pool []byte
			var order []uint32
			if c.method == "copy-pool" {
				pool = make([]byte, c.flows*c.size)
				for i := range c.flows {
					if _, err := BuildFrame(pool[i*c.size:], &cfg, i); err != nil {
						b.Fatal(err)
					}
				}
				order = make([]uint32, c.flows)
				for i := range order {
					order[i] = uint32(i)
				}
				if c.order == Random {
					order = Permutation(c.flows, cfg.Seed)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(c.size))
			next, pos := 0, 0
			for b.Loop() {
				if pool == nil {
					f.Fill(umem[next])
				} else {
					flow := int(order[pos])
					copy(umem[next], pool[flow*c.size:(flow+1)*c.size])
					if pos++; pos == c.flows {
						pos = 0
					}
				}
				if next++; next == len(umem) {
					next = 0
				}
			}
		})
	}
}
