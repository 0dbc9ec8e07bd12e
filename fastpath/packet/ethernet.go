package packet

import "encoding/binary"

// Ethernet II header, optionally followed by IEEE 802.1Q / 802.1ad tags:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination MAC Address                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                      Source MAC Address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  EtherType or TPID (tagged)   |  PCP|D|     VLAN ID (tagged)  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    EtherType (tagged)         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12

	// EthernetHeaderLen is the length of an untagged Ethernet II header.
	EthernetHeaderLen = 14
	// VLANTagLen is the length one 802.1Q or 802.1ad tag adds.
	VLANTagLen = 4
	// MaxVLANTags is how many stacked tags Parse accepts (802.1ad QinQ).
	MaxVLANTags = 2

	vlanIDMask = 0x0fff
)

// EtherTypes Parse understands.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeIPv6 = 0x86dd
	EtherTypeVLAN = 0x8100 // IEEE 802.1Q customer tag
	EtherTypeQinQ = 0x88a8 // IEEE 802.1ad service tag
)

// Ethernet is a view of an Ethernet II header at the start of a frame. It must
// hold at least EthernetHeaderLen bytes.
type Ethernet []byte

// Dst returns the destination MAC address.
func (b Ethernet) Dst() [6]byte { return [6]byte(b[ethDst : ethDst+6]) }

// Src returns the source MAC address.
func (b Ethernet) Src() [6]byte { return [6]byte(b[ethSrc : ethSrc+6]) }

// EtherType returns the type field that follows the MAC addresses; for a
// tagged frame that is the TPID of the outer tag, not the payload type.
func (b Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(b[ethType : ethType+2]) }

// SetDst sets the destination MAC address.
func (b Ethernet) SetDst(mac [6]byte) { copy(b[ethDst:ethDst+6], mac[:]) }

// SetSrc sets the source MAC address.
func (b Ethernet) SetSrc(mac [6]byte) { copy(b[ethSrc:ethSrc+6], mac[:]) }
