package assoc

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
)

// Record v2: one 32-byte slot, two slots to a 64-byte cache line, two slots
// per association of capacity (load factor at most one half), so 64 bytes of
// memory per association.
//
//	byte  0                               8                              16
//	     +-------------------------------+-------------------------------+
//	w0/1 |  address bytes 0-7 (w0)       |  address bytes 8-15 (w1)      |  key
//	     +-------------------------------+-------------------------------+
//	byte 16    18   19  20                24                             32
//	     +-----+----+---+----------------+-------------------------------+
//	w2   |port |set |pkb| (reserved)     |  aux (32 bits)                |  key + value
//	     +-----+----+---+----------------+-------------------------------+
//	            pkb: proto (bits 0-1), kind (2-3), origin (4), nat (5), app (6)
//
//	w3 (meta), bit 0                                                    63
//	     +-----+---------+----------+-------------+--------+-------+
//	     |state| seq (12)| seen (22)| gen (20)    |server 4|flags 4|
//	     +-----+---------+----------+-------------+--------+-------+
//	      0-1    2-13      14-35      36-55         56-59    60-63
//
// The key is w0, w1 and the low 28 bits of w2 (port, set, protocol, kind):
// a lookup compares three words. Everything a forwarded packet needs to decide
// (state, server, generation, flags, last packet) is in w3, the one word the
// owner rewrites in place, so a worker decodes its decision from a single
// register (see Meta) instead of assembling a struct.
//
// aux is a union by kind and protocol: the SCTP verification tag of a flow
// (FlagTagLearned), the TCP sequence offset of a flow whose payload a helper
// rewrote, the client's sequence mark of another TCP flow (the engine's
// teardown check), the server identity of a persistence record, the flow slot a
// verification-tag index entry points at.
const (
	stateShift  = 0
	seqShift    = 2
	seenShift   = 14
	genShift    = 36
	serverShift = 56
	flagShift   = 60

	stateMask = 1<<2 - 1
	seqMask   = 1<<12 - 1
	seenMask  = 1<<22 - 1
	genMask   = 1<<20 - 1

	setShift    = 16
	pkbShift    = 24
	kindShift   = pkbShift + 2
	originShift = pkbShift + 4
	natShift    = pkbShift + 5
	appShift    = pkbShift + 6
	keyMaskW2   = 1<<28 - 1 // port, set, protocol, kind: the bits below origin
	auxShift    = 32
)

// GenBits is how many bits of a server generation a record keeps; the slow
// path numbers generations within 1..MaxGen.
const GenBits = 20

// MaxGen is the largest server generation a record can hold.
const MaxGen = genMask

// MaxSetID is the largest target set (or persistence group) id a key can
// carry.
const MaxSetID = 255

// Kind says what a record is; records of different kinds never match each
// other's keys.
type Kind uint8

// Record kinds.
const (
	// KindFlow is an association: one client flow (address, port,
	// protocol) towards one target set. Addr is the client's address.
	KindFlow Kind = iota
	// KindPersist is a persistence record: Addr is the client address
	// masked to the group's prefix, Set the persistence group, Port and
	// Proto zero; the value's Tag holds the server identity.
	KindPersist
	// KindExpect is an expectation an FTP helper announced: the key of the
	// data connection it expects (client address and port, protocol, set),
	// the value the server it must reach.
	KindExpect
	// KindTag indexes an SCTP association by the verification tag the
	// peer uses: Addr holds the tag in its first four bytes, Set the target
	// set, Proto SCTP; the value names the server like the flow it indexes.
	KindTag
	// NumKinds is the number of record kinds.
	NumKinds
)

// String returns the kind's name in listings.
func (k Kind) String() string {
	return [...]string{"flow", "persist", "expect", "tag", "?"}[min(k, NumKinds)]
}

// Origin says where a record was made.
type Origin uint8

// Origins.
const (
	OriginLocal    Origin = iota // made by this instance's workers
	OriginImported               // imported from a mated instance
)

// Key identifies a record. Addresses are 16 bytes; IPv4 clients use the
// IPv4-mapped form so both families share one key type. Set must not exceed
// MaxSetID.
type Key struct {
	Addr  [16]byte // client address (see Kind for the other kinds)
	Port  uint16   // client port
	Proto uint8    // IANA protocol number: TCP, UDP or SCTP
	Set   uint16   // target set id (persistence group for KindPersist), stable across reloads
	Kind  Kind
}

// Value is what a record holds, decoded. The forwarding path reads Meta
// instead; Value is for everyone else.
type Value struct {
	Server   uint8  // server slot within the target set (0..15)
	Gen      uint32 // server generation when chosen (GenBits bits)
	Flags    uint8  // FlagFIN, FlagRST, FlagShutdown, FlagProven (FlagTagLearned)
	Tag      uint32 // aux: SCTP verification tag, TCP sequence offset, persistence server id
	LastSeen uint32 // clock reading (see Clock) of the last packet
	Origin   Origin
	NAT      bool // the flow is address-translated (forwarding = "nat")
	// App marks a Diameter flow that carried an application message (a
	// command other than capabilities exchange, watchdog and disconnect):
	// only such a flow is kept alive by its packets (the engine's
	// Diameter staleness).
	App bool
}

// Flags a record carries about the connection it records. Four bits.
const (
	FlagFIN      uint8 = 1 << iota // a TCP FIN was seen from the client
	FlagRST                        // a TCP RST was seen from the client
	FlagShutdown                   // an SCTP SHUTDOWN, SHUTDOWN ACK, SHUTDOWN COMPLETE or ABORT was seen
	// FlagProven marks a flow that has shown more than one packet of a real
	// connection (see the engine's proves): a TCP client's ACK after its
	// first packet, an SCTP packet carrying the tag the server chose, a
	// second UDP datagram. Flows without it age by the shorter syn_age and
	// are the ones a flood of spoofed sources makes (Ages.Unproven).
	FlagProven
	// FlagTagLearned is FlagProven of an SCTP flow: Tag holds the
	// verification tag the server chose, learned from the client's packet
	// after INIT, which is also what proves the association.
	FlagTagLearned = FlagProven
)

// Meta is a record's meta word (w3): what the forwarding decision needs, in
// one register.
type Meta uint64

// Server is the server slot.
func (m Meta) Server() uint8 { return uint8(m>>serverShift) & 0xF }

// Gen is the server generation.
func (m Meta) Gen() uint32 { return uint32(m>>genShift) & genMask }

// Flags are the Flag* bits.
func (m Meta) Flags() uint8 { return uint8(m >> flagShift) }

// LastSeen is the clock reading of the last packet.
func (m Meta) LastSeen() uint32 { return uint32(m>>seenShift) & seenMask }

func (m Meta) state() uint64 { return uint64(m) & stateMask }

func (m Meta) seq() uint64 { return uint64(m>>seqShift) & seqMask }

// Packed is a key as the table stores and compares it: w0, w1 and w2's key
// bits. The forwarding path builds it straight from a parsed packet
// (PackFlow) and hashes and looks it up without going through Key.
type Packed struct{ a, b, c uint64 }

// Pack returns k's packed form.
func (k *Key) Pack() Packed {
	return Packed{binary.LittleEndian.Uint64(k.Addr[0:8]), binary.LittleEndian.Uint64(k.Addr[8:16]),
		uint64(k.Port) | uint64(k.Set&MaxSetID)<<setShift | protoCode(k.Proto)<<pkbShift | uint64(k.Kind&3)<<kindShift}
}

// PackFlow returns the packed key of a KindFlow record: client address,
// port and protocol towards target set set.
func PackFlow(addr *[16]byte, port uint16, proto uint8, set uint16) Packed {
	return Packed{binary.LittleEndian.Uint64(addr[0:8]), binary.LittleEndian.Uint64(addr[8:16]),
		uint64(port) | uint64(set&MaxSetID)<<setShift | protoCode(proto)<<pkbShift}
}

// Key returns the key p packs.
func (p *Packed) Key() Key { return decodeKey(p.a, p.b, p.c) }

// Hash mixes a key into the 64-bit hash Find expects. Callers compute it once
// per packet (and may use it to touch the slot early, see Prefetch).
func (k *Key) Hash() uint64 {
	p := k.Pack()
	return p.Hash()
}

// Hash is the hash of the packed key: two 64x64->128-bit multiplies folded
// (the wyhash mix). Each output bit depends on every key bit, including the
// high bits fastrange uses to pick the home line, at half the multiplies of
// a Murmur finaliser over three words. It is keyed per process (hashKey), so
// that nobody off the machine can choose client addresses that pile onto one
// home line and lengthen its probe chain.
func (p *Packed) Hash() uint64 {
	hi, lo := bits.Mul64(p.a^hashKey[0], p.b^hashKey[1])
	hi, lo = bits.Mul64(hi^lo^p.c, 0x8ebc6af09c88c6e3)
	return hi ^ lo
}

// hashKey keys Hash: random per process, since shards are never shared
// between processes (replication sends keys, not hashes). The fixed wyhash
// constants stand in if the system has no randomness to give.
var hashKey = func() [2]uint64 {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return [2]uint64{0xa0761d6478bd642f, 0xe7037ed1a0b428db}
	}
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}()

// valueW2 is w2 for key words c and value v.
func valueW2(c uint64, v *Value) uint64 {
	w := c | uint64(v.Tag)<<auxShift | uint64(v.Origin&1)<<originShift
	if v.NAT {
		w |= 1 << natShift
	}
	if v.App {
		w |= 1 << appShift
	}
	return w
}

// encodeMeta builds a meta word.
func encodeMeta(state uint64, v *Value, seq uint64) Meta {
	return Meta(state | (seq&seqMask)<<seqShift | uint64(v.LastSeen&seenMask)<<seenShift |
		uint64(v.Gen&genMask)<<genShift | uint64(v.Server&0xF)<<serverShift | uint64(v.Flags&0xF)<<flagShift)
}

// decode turns w2 and meta into a Value.
func decode(w2 uint64, m Meta) Value {
	return Value{
		Server: m.Server(), Gen: m.Gen(), Flags: m.Flags(), LastSeen: m.LastSeen(),
		Tag: uint32(w2 >> auxShift), Origin: Origin(w2>>originShift) & 1, NAT: w2>>natShift&1 == 1,
		App: w2>>appShift&1 == 1,
	}
}

// decodeKey rebuilds a key from its words.
func decodeKey(w0, w1, w2 uint64) Key {
	var k Key
	binary.LittleEndian.PutUint64(k.Addr[0:8], w0)
	binary.LittleEndian.PutUint64(k.Addr[8:16], w1)
	k.Port = uint16(w2)
	k.Set = uint16(w2>>setShift) & MaxSetID
	k.Proto = protoNumber(w2 >> pkbShift)
	k.Kind = Kind(w2>>kindShift) & 3
	return k
}

// protoCodes packs the three protocols a record can carry into two bits; a
// table, not a switch, so that the key words cost a load and Hash inlines.
var protoCodes = [256]uint8{6: 1, 17: 2, 132: 3}

func protoCode(p uint8) uint64 { return uint64(protoCodes[p]) }

func protoNumber(c uint64) uint8 {
	return [4]uint8{0, 6, 17, 132}[c&3]
}
