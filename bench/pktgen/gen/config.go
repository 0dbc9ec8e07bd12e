package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// Proto is the kind of packet the generator sends.
type Proto uint8

const (
	// UDP datagrams, the payload zero padding.
	UDP Proto = iota
	// TCPSyn segments: flags SYN, seq TCPSeq, ack 0; the load balancer sees
	// a new connection attempt per packet.
	TCPSyn
	// TCPAck segments: flags ACK, seq TCPSeq, ack TCPSeq; mid-connection
	// traffic.
	TCPAck
	// SCTPData packets: one DATA chunk (flags B|E, TSN 1, stream 0) in an
	// association with verification tag SCTPTag.
	SCTPData
	// SCTPInit packets: one INIT chunk, verification tag 0, Initiate Tag
	// SCTPTag, padded with a Padding parameter (RFC 4820) to Size.
	SCTPInit

	numProtos
)

var protoNames = [numProtos]string{"udp", "tcp-syn", "tcp-ack", "sctp-data", "sctp-init"}

// String returns the protocol's flag name.
func (p Proto) String() string {
	if p < numProtos {
		return protoNames[p]
	}
	return fmt.Sprintf("Proto(%d)", uint8(p))
}

// ParseProto parses the names String returns.
func ParseProto(s string) (Proto, error) {
	for i, n := range protoNames {
		if n == s {
			return Proto(i), nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q (want udp, tcp-syn, tcp-ack, sctp-data or sctp-init)", s)
}

// MarshalText makes Proto print by name in JSON.
func (p Proto) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the name MarshalText writes.
func (p *Proto) UnmarshalText(b []byte) error {
	v, err := ParseProto(string(b))
	if err == nil {
		*p = v
	}
	return err
}

// ipProto is the IP protocol number of p.
func (p Proto) ipProto() uint8 {
	switch p {
	case TCPSyn, TCPAck:
		return packet.ProtoTCP
	case SCTPData, SCTPInit:
		return packet.ProtoSCTP
	}
	return packet.ProtoUDP
}

// l4HeaderLen is the length of everything p puts before its padding: the L4
// header, plus for SCTP the chunk header and the chunk's fixed fields.
func (p Proto) l4HeaderLen() int {
	switch p {
	case TCPSyn, TCPAck:
		return packet.TCPMinHeaderLen
	case SCTPData:
		return packet.SCTPHeaderLen + packet.SCTPChunkHeaderLen + sctpDataFixed
	case SCTPInit:
		return packet.SCTPHeaderLen + packet.SCTPChunkHeaderLen + sctpInitFixed
	}
	return packet.UDPHeaderLen
}

// FlowOrder is the order in which the generator visits the flows.
type FlowOrder uint8

const (
	// Seq visits flow 0, 1, ..., flows-1, 0, ...
	Seq FlowOrder = iota
	// Random visits the flows in a random permutation, fixed by Seed and
	// repeated every cycle, so every flow is sent once per cycle.
	Random
)

// String returns the order's flag name.
func (o FlowOrder) String() string {
	switch o {
	case Seq:
		return "seq"
	case Random:
		return "random"
	}
	return fmt.Sprintf("FlowOrder(%d)", uint8(o))
}

// MarshalText makes FlowOrder print by name in JSON.
func (o FlowOrder) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText parses the name MarshalText writes.
func (o *FlowOrder) UnmarshalText(b []byte) error {
	v, err := ParseFlowOrder(string(b))
	if err == nil {
		*o = v
	}
	return err
}

// ParseFlowOrder parses "seq" or "random".
func ParseFlowOrder(s string) (FlowOrder, error) {
	switch s {
	case "seq":
		return Seq, nil
	case "random":
		return Random, nil
	}
	return 0, fmt.Errorf("unknown flow order %q (want seq or random)", s)
}

// Defaults for zero Config fields, and limits.
const (
	DefaultSize       = 64   // frame bytes without FCS, if the headers fit
	DefaultSportFirst = 1024 // first client port
	DefaultBatch      = 64
	DefaultRing       = 2048
	DefaultSCTPTag    = 0x1d2e3f40
	DefaultTCPSeq     = 0x10000000

	// MinSize is the shortest frame Config accepts: the Ethernet minimum
	// without FCS (a NIC pads shorter frames to it anyway).
	MinSize = 60
	// MaxSize is the largest frame: one 4096-byte UMEM frame (no
	// multi-buffer). The interface's MTU+14 bounds it further.
	MaxSize = 4096
	// MaxSrcCount bounds the client addresses (their tables cost 22 bytes
	// each for IPv6).
	MaxSrcCount = 1 << 20
	// MaxRandomFlows bounds the flows of Random order, whose permutation
	// costs 4 bytes per flow.
	MaxRandomFlows = 1 << 24
	// MaxBatch bounds Batch.
	MaxBatch = 4096
	// MaxRing bounds Ring. The UMEM holds nextpow2(3*Ring+Batch) frames
	// of 2 KB (4 KB for frames over 2048 bytes): 16 MB at the default
	// ring, 128 MB at this one.
	MaxRing = 16384

	maxCPU = 1024 // CPU_SETSIZE
)

// ErrConfig is wrapped by every error about an invalid Config; the wrapping
// error says what is wrong.
var ErrConfig = errors.New("pktgen: invalid config")

// Config is what to send and how. The zero value of each field is its
// default where one is documented; Src and Dst are required.
//
// A flow is a (client address, client port) pair; there are
// Flows() = SrcCount * SportCount of them. Flow i is
//
//	address = Src + i / SportCount   (as a 32- or 128-bit integer)
//	port    = SportFirst + i % SportCount
//
// so consecutive flows first walk the ports of one address; see FlowTuple.
type Config struct {
	// Dev is the interface to transmit on, in the network namespace of the
	// thread that calls New; Queue its TX queue (the AF_XDP socket binds
	// to it). Only New uses them.
	Dev   string
	Queue int
	// XSKMode selects zero-copy or copy mode (XSKAuto: whatever the
	// driver can do; veth can only copy).
	XSKMode XSKMode

	// SrcMAC and DstMAC are the Ethernet addresses. New fills a zero
	// SrcMAC with Dev's address and a zero DstMAC from the neighbour
	// table (see ResolveDstMAC); BuildFrame uses them as they are.
	SrcMAC, DstMAC [6]byte

	// Src is the first client address, Dst the destination (the VIP);
	// both IPv4 or both IPv6.
	Src, Dst netip.Addr
	// SrcCount is the number of client addresses (0: 1), SportFirst the
	// first client port (0: DefaultSportFirst) and SportCount the number
	// of client ports (0: 1).
	SrcCount   int
	SportFirst uint16
	SportCount int
	// Dport is the destination port.
	Dport uint16

	Proto Proto
	// Size is the frame length without FCS, at least MinSize and the
	// headers' length; 0 means DefaultSize or the headers' length if
	// larger (74 for IPv6 TCP). The packet's payload pads it; SCTP, whose
	// chunks are 4-byte aligned, may leave up to 3 bytes of Ethernet
	// trailer after the IP packet.
	Size int
	// SCTPTag is the verification tag of SCTPData packets and the
	// Initiate Tag of SCTPInit packets (0: DefaultSCTPTag).
	SCTPTag uint32
	// TCPSeq is the sequence number of TCP segments (0: DefaultTCPSeq).
	TCPSeq uint32

	// Rate is the target in packets per second, 0 for as fast as
	// possible. It is enforced by a token bucket checked once per batch.
	Rate float64
	// Duration and Count bound a Run: it stops when either is reached
	// (0: no bound; with neither, only the context stops it).
	Duration time.Duration
	Count    uint64
	// Batch is the number of frames per TX submission (0: DefaultBatch);
	// Ring the size of the socket's rings, a power of two (0:
	// DefaultRing, at most MaxRing).
	Batch int
	Ring  int

	FlowOrder FlowOrder
	// Seed fixes the Random permutation.
	Seed uint64

	// Pin pins the thread that runs Run to CPU for the run. In a veth lab
	// pin the generator to one CPU and let the receiver's NAPI (made
	// threaded) run on another.
	Pin bool
	CPU int
}

// XSKMode selects the AF_XDP bind mode.
type XSKMode uint8

const (
	XSKAuto     XSKMode = iota // zero-copy if the driver can, else copy
	XSKCopy                    // copy mode (XDP_COPY): every driver, veth included
	XSKZeroCopy                // zero-copy (XDP_ZEROCOPY) or New fails
)

// String returns the mode's flag name.
func (m XSKMode) String() string {
	switch m {
	case XSKAuto:
		return "auto"
	case XSKCopy:
		return "copy"
	case XSKZeroCopy:
		return "zerocopy"
	}
	return fmt.Sprintf("XSKMode(%d)", uint8(m))
}

// ParseXSKMode parses "auto", "copy" or "zerocopy".
func ParseXSKMode(s string) (XSKMode, error) {
	for m := XSKAuto; m <= XSKZeroCopy; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown AF_XDP mode %q (want auto, copy or zerocopy)", s)
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// Flows returns the number of flows, SrcCount*SportCount with defaults
// applied.
func (c *Config) Flows() int {
	return max(c.SrcCount, 1) * max(c.SportCount, 1)
}

// HeaderLen returns the length of the smallest frame Proto fits in for the
// family of Dst: Ethernet, IP and L4 headers (for SCTP, with the chunk's
// fixed fields).
func (c *Config) HeaderLen() int {
	l3 := packet.IPv6HeaderLen
	if c.Dst.Is4() {
		l3 = packet.IPv4MinHeaderLen
	}
	return packet.EthernetHeaderLen + l3 + c.Proto.l4HeaderLen()
}

// withDefaults returns c with the zero fields that have defaults filled in,
// checked for consistency.
func (c *Config) withDefaults() (Config, error) {
	n := *c
	if n.SrcCount == 0 {
		n.SrcCount = 1
	}
	if n.SportCount == 0 {
		n.SportCount = 1
	}
	if n.SportFirst == 0 {
		n.SportFirst = DefaultSportFirst
	}
	if n.SCTPTag == 0 {
		n.SCTPTag = DefaultSCTPTag
	}
	if n.TCPSeq == 0 {
		n.TCPSeq = DefaultTCPSeq
	}
	if n.Batch == 0 {
		n.Batch = DefaultBatch
	}
	if n.Ring == 0 {
		n.Ring = DefaultRing
	}
	if n.Size == 0 {
		n.Size = max(DefaultSize, n.HeaderLen())
	}
	switch {
	case !n.Src.IsValid() || !n.Dst.IsValid():
		return n, configError("source and destination addresses are required")
	case n.Src.Zone() != "" || n.Dst.Zone() != "":
		return n, configError("addresses with zones are not supported")
	case n.Src.Is4() != n.Dst.Is4():
		return n, configError("source %v and destination %v are not of one family", n.Src, n.Dst)
	case n.Src.Is4In6() || n.Dst.Is4In6():
		return n, configError("IPv4-mapped IPv6 addresses are not sent on the wire")
	case n.Proto >= numProtos:
		return n, configError("unknown protocol %v", n.Proto)
	case n.FlowOrder > Random:
		return n, configError("unknown flow order %v", n.FlowOrder)
	case n.XSKMode > XSKZeroCopy:
		return n, configError("unknown AF_XDP mode %v", n.XSKMode)
	case n.SrcCount < 0 || n.SrcCount > MaxSrcCount:
		return n, configError("source address count %d out of [1, %d]", n.SrcCount, MaxSrcCount)
	case n.SportCount < 0 || int(n.SportFirst)+n.SportCount-1 > math.MaxUint16:
		return n, configError("source ports %d+%d run past 65535", n.SportFirst, n.SportCount)
	case n.Size < max(MinSize, n.HeaderLen()) || n.Size > MaxSize:
		return n, configError("frame size %d out of [%d, %d] for %v over IPv%d", n.Size,
			max(MinSize, n.HeaderLen()), MaxSize, n.Proto, family(n.Dst))
	case n.FlowOrder == Random && n.Flows() > MaxRandomFlows:
		return n, configError("random flow order: %d flows exceed %d (the permutation is precomputed)",
			n.Flows(), MaxRandomFlows)
	case n.Rate < 0 || math.IsNaN(n.Rate) || math.IsInf(n.Rate, 0):
		return n, configError("rate %v pps", n.Rate)
	case n.Duration < 0:
		return n, configError("duration %v", n.Duration)
	case n.Batch < 1 || n.Batch > MaxBatch:
		return n, configError("batch %d out of [1, %d]", n.Batch, MaxBatch)
	case n.Ring < 64 || n.Ring > MaxRing || n.Ring&(n.Ring-1) != 0:
		return n, configError("ring size %d is not a power of two in [64, %d]", n.Ring, MaxRing)
	case n.Batch > n.Ring:
		return n, configError("batch %d larger than the ring (%d)", n.Batch, n.Ring)
	case n.Queue < 0:
		return n, configError("queue %d", n.Queue)
	case n.Pin && (n.CPU < 0 || n.CPU >= maxCPU):
		return n, configError("CPU %d out of [0, %d)", n.CPU, maxCPU)
	}
	if _, ok := addrAdd(n.Src, uint64(n.SrcCount-1)); !ok {
		return n, configError("%d source addresses from %v overflow the address space", n.SrcCount, n.Src)
	}
	return n, nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// FlowTuple returns the client address and port of flow i (0 <= i <
// Flows()): address Src + i/SportCount, port SportFirst + i%SportCount, the
// address added as an integer, so it carries across octets
// (198.51.100.255 + 1 = 198.51.101.0).
func (c *Config) FlowTuple(i int) (netip.Addr, uint16, error) {
	n, err := c.withDefaults()
	if err != nil {
		return netip.Addr{}, 0, err
	}
	if i < 0 || i >= n.Flows() {
		return netip.Addr{}, 0, configError("flow %d out of [0, %d)", i, n.Flows())
	}
	a, _ := addrAdd(n.Src, uint64(i/n.SportCount))
	return a, n.SportFirst + uint16(i%n.SportCount), nil
}

// addrAdd returns a+k as an integer of the address's width and whether it
// did not overflow.
func addrAdd(a netip.Addr, k uint64) (netip.Addr, bool) {
	if a.Is4() {
		b := a.As4()
		v := uint64(binary.BigEndian.Uint32(b[:])) + k
		if v > math.MaxUint32 {
			return netip.Addr{}, false
		}
		binary.BigEndian.PutUint32(b[:], uint32(v))
		return netip.AddrFrom4(b), true
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	nlo := lo + k
	if nlo < lo {
		if hi == math.MaxUint64 {
			return netip.Addr{}, false
		}
		hi++
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], nlo)
	return netip.AddrFrom16(b), true
}
