package ha

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"
)

// The sync protocol's datagrams. Every message, whatever its type, has the
// same header and ends with an HMAC-SHA256 over everything before it:
//
//	byte 0        4    5    6         8                16               24               32               40
//	     +--------+----+----+---------+----------------+----------------+----------------+----------------+----
//	     | "IPFH" |ver |type| length  | epoch          | seq            | time (ns)      | aux            | body ... | HMAC (32)
//	     +--------+----+----+---------+----------------+----------------+----------------+----------------+----
//
// epoch is the sender's start time (Unix nanoseconds): it grows with every
// restart, so a receiver tells a mate's new life from a replay of its old
// one. seq numbers the messages of one epoch from one sender to one mate,
// from 1, without gaps: every message takes one, so the receiver sees any
// loss as a hole. time is when the message was first sealed; a receiver
// refuses one whose time is further than maxSkew from its own clock, which
// bounds how long a captured message is worth anything. aux is per type (a
// resync's id). length is the datagram's, HMAC included: a datagram cut
// short on the way is told from a forged one.
//
// A body of records (msgChanges, msgResync), back to back, each:
//
//	op(1) kind(1) proto(1) flags(1) addr(16) port(2) age(4) tag(4) setLen(1) set(setLen) srvLen(1) srv(srvLen)
//
// flags holds the record's assoc flags in bits 0-3 and NAT in bit 4; age is
// how many seconds ago the flow last sent a packet (the importer's clock
// differs); set is the target set's name; srv the server's address (4 or 16
// bytes; absent in a delete), never a slot or a generation, which are the
// sender's own. A msgNack body is a list of 8-byte sequence numbers.

// Message types.
const (
	msgChanges     uint8 = iota + 1 // association changes (records)
	msgHeartbeat                    // nothing: takes a sequence number, so a lost tail shows as a hole
	msgResyncReq                    // send me your whole table; aux: the request's id
	msgResyncBegin                  // a resync starts; aux: the request's id
	msgResync                       // records of a resync
	msgResyncEnd                    // a resync is complete once every message up to this one arrived; aux: the id
	msgNack                         // retransmit these sequence numbers (body)
	numMsgTypes
)

// Wire constants.
const (
	wireVersion = 1
	headerLen   = 40
	macLen      = sha256.Size
	// maxDatagram keeps a message in one Ethernet frame on any path
	// (1500 minus IPv6 and UDP headers, with room to spare).
	maxDatagram = 1400
	maxBody     = maxDatagram - headerLen - macLen
	recordFixed = 32 // a record without its set name and server address
	// maxRecordLen is the longest record: a 255-byte set name and an IPv6
	// server.
	maxRecordLen = recordFixed + 255 + 16
	maxNack      = maxBody / 8
)

var magic = [4]byte{'I', 'P', 'F', 'H'}

// Errors of Open, one per rejection reason counted.
var (
	errTruncated = errors.New("truncated or malformed message")
	errForged    = errors.New("message authentication failed")
)

// header is a message's fixed part.
type header struct {
	typ   uint8
	epoch uint64
	seq   uint64
	time  int64
	aux   uint64
}

// sealer builds and authenticates messages under one key. Not safe for
// concurrent use: each goroutine that seals or opens has its own.
type sealer struct {
	mac hash.Hash
	sum [macLen]byte
}

func newSealer(key []byte) *sealer { return &sealer{mac: hmac.New(sha256.New, key)} }

// seal returns the message of h and body, authenticated.
func (s *sealer) seal(h header, body []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(body)+macLen)
	copy(b[0:4], magic[:])
	b[4], b[5] = wireVersion, h.typ
	binary.BigEndian.PutUint16(b[6:], uint16(headerLen+len(body)+macLen))
	binary.BigEndian.PutUint64(b[8:], h.epoch)
	binary.BigEndian.PutUint64(b[16:], h.seq)
	binary.BigEndian.PutUint64(b[24:], uint64(h.time))
	binary.BigEndian.PutUint64(b[32:], h.aux)
	b = append(b, body...)
	s.mac.Reset()
	s.mac.Write(b)
	return s.mac.Sum(b)
}

// open checks msg's form and authentication and returns its header and
// body (a sub-slice of msg). A message that is too short, of another
// version or type, or shorter than its header says, is errTruncated; one
// whose HMAC does not match is errForged (checked before anything but the
// lengths is believed).
func (s *sealer) open(msg []byte) (header, []byte, error) {
	if len(msg) < headerLen+macLen || int(binary.BigEndian.Uint16(msg[6:])) != len(msg) {
		return header{}, nil, errTruncated
	}
	signed, sum := msg[:len(msg)-macLen], msg[len(msg)-macLen:]
	s.mac.Reset()
	s.mac.Write(signed)
	if !hmac.Equal(s.mac.Sum(s.sum[:0]), sum) {
		return header{}, nil, errForged
	}
	if [4]byte(signed[0:4]) != magic || signed[4] != wireVersion || signed[5] == 0 || signed[5] >= numMsgTypes {
		return header{}, nil, errTruncated
	}
	h := header{
		typ:   signed[5],
		epoch: binary.BigEndian.Uint64(signed[8:]),
		seq:   binary.BigEndian.Uint64(signed[16:]),
		time:  int64(binary.BigEndian.Uint64(signed[24:])),
		aux:   binary.BigEndian.Uint64(signed[32:]),
	}
	body := signed[headerLen:]
	if h.seq == 0 || (h.typ == msgNack && len(body)%8 != 0) {
		return header{}, nil, errTruncated
	}
	return h, body, nil
}

// Record operations on the wire.
const (
	opUpsert uint8 = 1
	opDelete uint8 = 2
)

// record is one association as mates exchange it: named by what both
// instances share (the set's name, the server's address), never by slot or
// generation.
type record struct {
	op     uint8
	kind   uint8 // assoc.Kind: KindFlow or KindPersist
	proto  uint8
	flags  uint8 // assoc flags
	nat    bool
	addr   [16]byte
	port   uint16
	age    uint32 // seconds since the flow's last packet
	tag    uint32
	set    string
	server netip.Addr // invalid in a delete
}

// appendRecord appends r's encoding to b. The set name must be at most 255
// bytes (config names are shorter).
func appendRecord(b []byte, r *record) []byte {
	flags := r.flags & 0x0F
	if r.nat {
		flags |= 0x10
	}
	b = append(b, r.op, r.kind, r.proto, flags)
	b = append(b, r.addr[:]...)
	b = binary.BigEndian.AppendUint16(b, r.port)
	b = binary.BigEndian.AppendUint32(b, r.age)
	b = binary.BigEndian.AppendUint32(b, r.tag)
	b = append(b, byte(len(r.set)))
	b = append(b, r.set...)
	switch {
	case !r.server.IsValid():
		b = append(b, 0)
	case r.server.Is4():
		a := r.server.As4()
		b = append(append(b, 4), a[:]...)
	default:
		a := r.server.As16()
		b = append(append(b, 16), a[:]...)
	}
	return b
}

// recordLen is the length of r's encoding.
func recordLen(r *record) int {
	n := recordFixed + len(r.set)
	switch {
	case !r.server.IsValid():
	case r.server.Is4():
		n += 4
	default:
		n += 16
	}
	return n
}

// decodeRecords decodes a body of records into out (reused).
func decodeRecords(body []byte, out []record) ([]record, error) {
	out = out[:0]
	for len(body) > 0 {
		if len(body) < recordFixed {
			return out, errTruncated
		}
		r := record{op: body[0], kind: body[1], proto: body[2], flags: body[3] & 0x0F, nat: body[3]&0x10 != 0}
		if (r.op != opUpsert && r.op != opDelete) || body[3]&^0x1F != 0 {
			return out, errTruncated
		}
		copy(r.addr[:], body[4:20])
		r.port = binary.BigEndian.Uint16(body[20:])
		r.age = binary.BigEndian.Uint32(body[22:])
		r.tag = binary.BigEndian.Uint32(body[26:])
		n := int(body[30])
		body = body[31:]
		if len(body) < n+1 {
			return out, errTruncated
		}
		r.set = string(body[:n])
		sn := int(body[n])
		body = body[n+1:]
		switch {
		case sn == 0:
		case sn == 4 && len(body) >= 4:
			r.server = netip.AddrFrom4([4]byte(body[:4]))
		case sn == 16 && len(body) >= 16:
			r.server = netip.AddrFrom16([16]byte(body[:16]))
		default:
			return out, errTruncated
		}
		body = body[sn:]
		if r.op == opUpsert && !r.server.IsValid() {
			return out, errTruncated
		}
		out = append(out, r)
	}
	return out, nil
}
