package gen

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// Frame layout: untagged Ethernet, IP without options or extension headers.
const (
	ethLen      = packet.EthernetHeaderLen
	ip4CsumOff  = ethLen + 10 // IPv4 header checksum
	ip4SrcOff   = ethLen + 12 // IPv4 source address
	ip4TotalOff = ethLen + 2
	ip6SrcOff   = ethLen + 8 // IPv6 source address
	ip6PlenOff  = ethLen + 4
	l4Off4      = ethLen + packet.IPv4MinHeaderLen
	l4Off6      = ethLen + packet.IPv6HeaderLen

	tcpCsumOff  = 16
	udpCsumOff  = 6
	sctpCsumOff = 8 // CRC32c, little endian

	sctpChunkFlagsOff = packet.SCTPHeaderLen + 1
	sctpChunkValueOff = packet.SCTPHeaderLen + packet.SCTPChunkHeaderLen

	// DATA chunk fixed fields (RFC 9260 3.3.1): TSN, stream identifier,
	// stream sequence number, payload protocol identifier.
	sctpDataFixed = 12
	sctpDataFlags = 0x03 // B (first) and E (last fragment): a whole message
	// INIT chunk fixed fields (RFC 9260 3.3.2): Initiate Tag, a_rwnd,
	// outbound streams, inbound streams, initial TSN.
	sctpInitFixed = 16
	sctpInitRwnd  = 1 << 16
	// sctpPaddingParam is the Padding parameter type (RFC 4820): its top
	// bits say "skip and continue" to a receiver that does not know it.
	sctpPaddingParam = 0x8005
)

// zeros is the padding Encode copies; never written.
var zeros [MaxSize]byte

// BuildFrame writes the frame of flow (0 <= flow < cfg.Flows()) to dst and
// returns its length, cfg.Size (or the default size): Ethernet from SrcMAC to
// DstMAC, IPv4 (TTL 64, DF, ID 0) or IPv6 (hop limit 64), then per Proto a
// UDP datagram, a TCP segment without options (window 65535), or an SCTP
// packet with one DATA or INIT chunk, padded with zeros to the frame size
// (see Config.Size), every checksum correct.
//
// It is the reference the generator's fast path is tested against: the
// Filler's frames are byte for byte BuildFrame's. It allocates nothing and
// keeps no state; it checks cfg on every call, so it is not meant for the
// per-packet path.
func BuildFrame(dst []byte, cfg *Config, flow int) (int, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return 0, err
	}
	if flow < 0 || flow >= c.Flows() {
		return 0, configError("flow %d out of [0, %d)", flow, c.Flows())
	}
	if len(dst) < c.Size {
		return 0, packet.ErrShortBuffer
	}
	src, _ := addrAdd(c.Src, uint64(flow/c.SportCount))
	return buildFrame(dst, &c, src, c.SportFirst+uint16(flow%c.SportCount))
}

// buildFrame is BuildFrame for a checked config and the flow's tuple.
func buildFrame(dst []byte, c *Config, src netip.Addr, sport uint16) (int, error) {
	l4 := l4Off4
	if c.Dst.Is6() {
		l4 = l4Off6
	}
	s := packet.FrameSpec{
		SrcMAC: c.SrcMAC, DstMAC: c.DstMAC,
		Src: src, Dst: c.Dst, Proto: c.Proto.ipProto(),
		SrcPort: sport, DstPort: c.Dport,
	}
	// room is what follows the L4 header (for SCTP, the chunk header):
	// zeros for UDP and TCP, the chunk's value for SCTP.
	var room int
	switch c.Proto {
	case UDP:
		room = c.Size - l4 - packet.UDPHeaderLen
	case TCPSyn, TCPAck:
		room = c.Size - l4 - packet.TCPMinHeaderLen
		s.TCPFlags, s.Seq = packet.TCPFlagSYN, c.TCPSeq
		if c.Proto == TCPAck {
			s.TCPFlags, s.Ack = packet.TCPFlagACK, c.TCPSeq
		}
	case SCTPData, SCTPInit:
		// Chunks are padded to 4 bytes; a value of a multiple of 4 needs
		// no padding, and the up to 3 bytes left become Ethernet trailer.
		room = (c.Size - l4 - sctpChunkValueOff) &^ 3
		s.SCTPChunk, s.SCTPTag = packet.SCTPChunkData, c.SCTPTag
		if c.Proto == SCTPInit {
			s.SCTPChunk, s.SCTPTag = packet.SCTPChunkInit, 0 // RFC 9260 8.5.1
		}
	}
	s.Payload = zeros[:room]
	n, err := packet.Encode(dst, &s)
	if err != nil {
		return 0, err
	}
	if c.Proto == SCTPData || c.Proto == SCTPInit {
		sctp := dst[l4:n]
		v := sctp[sctpChunkValueOff:]
		if c.Proto == SCTPData {
			sctp[sctpChunkFlagsOff] = sctpDataFlags
			binary.BigEndian.PutUint32(v[0:4], 1) // TSN; stream, SSN and PPID 0
		} else {
			binary.BigEndian.PutUint32(v[0:4], c.SCTPTag)
			binary.BigEndian.PutUint32(v[4:8], sctpInitRwnd)
			binary.BigEndian.PutUint16(v[8:10], 1)  // outbound streams
			binary.BigEndian.PutUint16(v[10:12], 1) // inbound streams
			binary.BigEndian.PutUint32(v[12:16], 1) // initial TSN
			if pad := len(v) - sctpInitFixed; pad > 0 {
				// pad is a multiple of 4 and at least 4: a whole
				// parameter, header included, that needs no padding.
				binary.BigEndian.PutUint16(v[16:18], sctpPaddingParam)
				binary.BigEndian.PutUint16(v[18:20], uint16(pad))
			}
		}
		packet.SCTP(sctp).SetChecksum(packet.SCTP(sctp).ComputeChecksum())
	}
	clear(dst[n:c.Size]) // Ethernet trailer (SCTP alignment)
	return c.Size, nil
}

// l4 checksum kinds.
const (
	csumUDP = iota
	csumTCP
	csumSCTP
)

// Filler writes successive flows into frames that already hold Template(),
// the frame of flow 0: only the client address and port and the checksums
// change from flow to flow, and Fill rewrites just those (at most 22 bytes,
// whatever the frame size), computing each checksum from sums precomputed
// for the template without the varying fields. The result is the frame
// BuildFrame builds for the flow, byte for byte, whatever flow the frame
// held before.
//
// The flow advances by one per Fill, in Config.FlowOrder, wrapping after
// Flows(). A Filler belongs to one goroutine.
type Filler struct {
	template []byte
	v4       bool
	csum     int // csumUDP, csumTCP or csumSCTP
	l4Off    int
	l4Csum   int // checksum offset in the L4 header (TCP, UDP)

	// Per client address index (addrs, and addr6 for IPv6), what patch
	// writes and computes from.
	addrs []addrRec
	addr6 [][16]byte

	// Per client port index: the port and, for SCTP, whose CRC32c covers
	// no pseudo-header, the packet's checksum.
	ports []uint16
	crc   []uint32

	naddrs, nports, flows int
	// end is the length of the frame's prefix patch writes to.
	end int

	// Flow cursor. Seq: ai, pi are the address and port index of the next
	// flow. Random: pos indexes perm, the flows of one cycle.
	ai, pi int
	perm   []uint32
	pos    int
}

// NewFiller checks cfg and precomputes the template and the per-address and
// per-port tables (O(SrcCount + SportCount), plus O(Flows()) for Random
// order's permutation).
func NewFiller(cfg *Config) (*Filler, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Filler{
		template: make([]byte, c.Size),
		v4:       c.Dst.Is4(),
		naddrs:   c.SrcCount,
		nports:   c.SportCount,
		flows:    c.Flows(),
		l4Off:    l4Off6,
	}
	if _, err := buildFrame(f.template, &c, c.Src, c.SportFirst); err != nil {
		return nil, err
	}
	var ipEnd int
	if f.v4 {
		f.l4Off = l4Off4
		ipEnd = ethLen + int(binary.BigEndian.Uint16(f.template[ip4TotalOff:]))
	} else {
		ipEnd = l4Off6 + int(binary.BigEndian.Uint16(f.template[ip6PlenOff:]))
	}
	seg := make([]byte, ipEnd-f.l4Off) // the L4 segment, to compute base sums on
	copy(seg, f.template[f.l4Off:ipEnd])
	binary.BigEndian.PutUint16(seg[0:2], 0) // source port

	f.ports = make([]uint16, c.SportCount)
	for i := range f.ports {
		f.ports[i] = c.SportFirst + uint16(i)
	}
	switch c.Proto {
	case SCTPData, SCTPInit:
		f.csum = csumSCTP
		f.crc = make([]uint32, c.SportCount)
		for i, p := range f.ports {
			binary.BigEndian.PutUint16(seg[0:2], p)
			f.crc[i] = packet.SCTP(seg).ComputeChecksum()
		}
	case TCPSyn, TCPAck:
		f.csum, f.l4Csum = csumTCP, tcpCsumOff
	default:
		f.csum, f.l4Csum = csumUDP, udpCsumOff
	}

	f.end = f.l4Off + f.l4Csum + 2
	if f.csum == csumSCTP {
		f.end = f.l4Off + sctpCsumOff + 4
	}
	var l4Base uint32
	if f.csum != csumSCTP {
		binary.BigEndian.PutUint16(seg[f.l4Csum:], 0)
		var pseudo uint32
		if f.v4 {
			pseudo = packet.PseudoHeaderSum4([4]byte{}, c.Dst.As4(), c.Proto.ipProto(), uint16(len(seg)))
		} else {
			pseudo = packet.PseudoHeaderSum6([16]byte{}, c.Dst.As16(), c.Proto.ipProto(), uint32(len(seg)))
		}
		l4Base = uint32(packet.Checksum(seg, pseudo))
	}
	f.addrs = make([]addrRec, c.SrcCount)

	if f.v4 {
		var hdr [packet.IPv4MinHeaderLen]byte
		copy(hdr[:], f.template[ethLen:])
		clear(hdr[ip4SrcOff-ethLen : ip4SrcOff-ethLen+4])
		clear(hdr[ip4CsumOff-ethLen : ip4CsumOff-ethLen+2])
		ipBase := uint32(packet.Checksum(hdr[:], 0))
		a := c.Src.As4()
		first := binary.BigEndian.Uint32(a[:])
		for i := range f.addrs {
			v := first + uint32(i) // checked not to overflow
			w := v>>16 + v&0xffff
			f.addrs[i] = addrRec{a4: v, ipCsum: ^fold(ipBase + w), l4Part: l4Base + w}
		}
	} else {
		f.addr6 = make([][16]byte, c.SrcCount)
		for i := range f.addr6 {
			a, _ := addrAdd(c.Src, uint64(i))
			f.addr6[i] = a.As16()
			var w uint32
			for j := 0; j < 16; j += 2 {
				w += uint32(binary.BigEndian.Uint16(f.addr6[i][j:]))
			}
			f.addrs[i].l4Part = l4Base + w
		}
	}

	if c.FlowOrder == Random {
		f.perm = Permutation(f.flows, c.Seed)
	}
	return f, nil
}

// addrRec is what patch needs of one client address.
type addrRec struct {
	// l4Part is the TCP/UDP checksum of everything but the source port:
	// the template's segment and pseudo-header with address and port
	// zeroed (folded), plus the address's 16-bit words.
	l4Part uint32
	a4     uint32 // IPv4 address
	ipCsum uint16 // IPv4 header checksum
}

// Permutation returns the Random flow order for flows flows and seed: a
// Fisher-Yates shuffle of 0..flows-1 driven by PCG(seed, seed^golden).
func Permutation(flows int, seed uint64) []uint32 {
	p := make([]uint32, flows)
	for i := range p {
		p[i] = uint32(i)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// fold folds a one's complement sum of up to 2^32-1 to 16 bits; like
// packet.Checksum it never turns a nonzero sum into 0.
func fold(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}

// Template returns the frame of flow 0, Size bytes. Copy it into every
// frame buffer once; Fill then patches it. The caller must not modify it.
func (f *Filler) Template() []byte { return f.template }

// Flows returns the number of flows.
func (f *Filler) Flows() int { return f.flows }

// Next returns the flow the next Fill writes and advances the cursor.
func (f *Filler) Next() int {
	ai, pi := f.next()
	return ai*f.nports + pi
}

// next returns the address and port index of the next flow and advances.
func (f *Filler) next() (ai, pi int) {
	if f.perm == nil {
		ai, pi = f.ai, f.pi
		if f.pi++; f.pi == f.nports {
			f.pi = 0
			if f.ai++; f.ai == f.naddrs {
				f.ai = 0
			}
		}
		return ai, pi
	}
	fl := int(f.perm[f.pos])
	if f.pos++; f.pos == f.flows {
		f.pos = 0
	}
	return fl / f.nports, fl % f.nports
}

// Fill turns frame, which holds Template() or any earlier Fill's output
// (at least Size bytes), into the frame of the next flow.
func (f *Filler) Fill(frame []byte) {
	ai, pi := f.next()
	f.patch(frame, ai, pi)
}

// FillFlow turns frame into the frame of flow (0 <= flow < Flows()) without
// moving the cursor.
func (f *Filler) FillFlow(frame []byte, flow int) {
	f.patch(frame, flow/f.nports, flow%f.nports)
}

// patch writes address ai and port pi and the checksums that depend on them.
func (f *Filler) patch(b []byte, ai, pi int) {
	b = b[:f.end] // a short frame panics here, before anything is written
	port := f.ports[pi]
	r := &f.addrs[ai]
	l4 := f.l4Off
	binary.BigEndian.PutUint16(b[l4:l4+2], port)
	if f.v4 {
		binary.BigEndian.PutUint32(b[ip4SrcOff:ip4SrcOff+4], r.a4)
		binary.BigEndian.PutUint16(b[ip4CsumOff:ip4CsumOff+2], r.ipCsum)
	} else {
		copy(b[ip6SrcOff:ip6SrcOff+16], f.addr6[ai][:])
	}
	if f.csum == csumSCTP {
		binary.LittleEndian.PutUint32(b[l4+sctpCsumOff:l4+sctpCsumOff+4], f.crc[pi])
		return
	}
	sum := ^fold(r.l4Part + uint32(port))
	if sum == 0 && f.csum == csumUDP {
		sum = 0xffff // RFC 768: zero means "no checksum"
	}
	c := l4 + f.l4Csum
	binary.BigEndian.PutUint16(b[c:c+2], sum)
}
