package packet

import (
	"encoding/binary"
	"hash/crc32"
)

// SCTP common header and the header of the first chunk (RFC 9260 sections 3.1
// and 3.2):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Source Port Number        |     Destination Port Number   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Verification Tag                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Checksum                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Chunk Type  | Chunk  Flags  |        Chunk Length           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	\                          Chunk Value                          \
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The chunk length excludes the padding to a multiple of 4 bytes.
const (
	sctpSrcPort    = 0
	sctpDstPort    = 2
	sctpVTag       = 4
	sctpChecksum   = 8
	sctpChunkType  = 12
	sctpChunkFlags = 13
	sctpChunkLen   = 14

	// SCTPHeaderLen is the length of the SCTP common header.
	SCTPHeaderLen = 12
	// SCTPChunkHeaderLen is the length of a chunk header.
	SCTPChunkHeaderLen = 4
)

// SCTP chunk types (RFC 9260 section 3.2).
const (
	SCTPChunkData             = 0
	SCTPChunkInit             = 1
	SCTPChunkInitAck          = 2
	SCTPChunkSack             = 3
	SCTPChunkHeartbeat        = 4
	SCTPChunkHeartbeatAck     = 5
	SCTPChunkAbort            = 6
	SCTPChunkShutdown         = 7
	SCTPChunkShutdownAck      = 8
	SCTPChunkError            = 9
	SCTPChunkCookieEcho       = 10
	SCTPChunkCookieAck        = 11
	SCTPChunkShutdownComplete = 14
)

// castagnoli is built once; crc32 recognises this table and uses the CPU's
// CRC32C instruction where there is one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroChecksum stands in for the checksum field while computing it. It is a
// package variable, never written, because a local escapes into crc32's
// assembly and would be allocated on every call.
var zeroChecksum [4]byte

// SCTP is a view of an SCTP packet: common header, then chunks. It must hold
// at least SCTPHeaderLen bytes; the chunk accessors need
// SCTPHeaderLen+SCTPChunkHeaderLen.
type SCTP []byte

// SrcPort returns the source port.
func (b SCTP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[sctpSrcPort : sctpSrcPort+2]) }

// DstPort returns the destination port.
func (b SCTP) DstPort() uint16 { return binary.BigEndian.Uint16(b[sctpDstPort : sctpDstPort+2]) }

// VerificationTag returns the verification tag, which is the receiver's
// Initiate Tag (zero in a packet carrying INIT).
func (b SCTP) VerificationTag() uint32 { return binary.BigEndian.Uint32(b[sctpVTag : sctpVTag+4]) }

// Checksum returns the CRC32c checksum field. Unlike every other field it is
// stored least significant byte first (RFC 9260 appendix A, as Linux and
// FreeBSD do), so the value compares equal to ComputeChecksum.
func (b SCTP) Checksum() uint32 {
	return binary.LittleEndian.Uint32(b[sctpChecksum : sctpChecksum+4])
}

// SetChecksum sets the checksum field (stored as Checksum describes).
func (b SCTP) SetChecksum(sum uint32) {
	binary.LittleEndian.PutUint32(b[sctpChecksum:sctpChecksum+4], sum)
}

// ComputeChecksum returns the CRC32c of the whole packet (every byte of b)
// with the checksum field taken as zero, whatever it holds. SCTP has no
// incremental update: after NAT changes a port or address (the CRC covers no
// pseudo-header, so only ports matter), store ComputeChecksum again.
func (b SCTP) ComputeChecksum() uint32 {
	crc := crc32.Update(0, castagnoli, b[:sctpChecksum])
	crc = crc32.Update(crc, castagnoli, zeroChecksum[:])
	return crc32.Update(crc, castagnoli, b[sctpChecksum+4:])
}

// ChunkType returns the type of the first chunk, e.g. SCTPChunkInit.
func (b SCTP) ChunkType() uint8 { return b[sctpChunkType] }

// ChunkFlags returns the flags of the first chunk.
func (b SCTP) ChunkFlags() uint8 { return b[sctpChunkFlags] }

// ChunkLen returns the length of the first chunk, header included and
// padding excluded.
func (b SCTP) ChunkLen() uint16 { return binary.BigEndian.Uint16(b[sctpChunkLen : sctpChunkLen+2]) }
