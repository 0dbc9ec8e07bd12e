package fastpath

import (
	"bytes"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// FuzzProcess feeds arbitrary frames to an engine serving IPv4 and IPv6 VIPs
// over TCP, UDP and SCTP. Whatever the bytes, the engine must not panic,
// every frame must be accounted for exactly once (sent to a server or dropped
// under a named reason), and a transmitted frame may differ from its input
// only in its two MAC addresses.
func FuzzProcess(f *testing.F) {
	all := ProtoBitTCP | ProtoBitUDP | ProtoBitSCTP
	tab := buildTables(f, 1,
		setSpec{id: 1, vip: vip4, protos: all, servers: weighted(1, 2, 3)},
		setSpec{id: 2, vip: vip6, protos: all, servers: weighted(1, 1)})
	for i := range 4 {
		f.Add(tcp(f, client(i%2 == 1, i), 80, packet.TCPFlagSYN), uint8(i))
	}
	f.Add([]byte{}, uint8(0))
	f.Add(bytes.Repeat([]byte{0xff}, 60), uint8(1))
	f.Fuzz(func(t *testing.T, frame []byte, clock uint8) {
		e := newEngine(t, 64, tab)
		in := append([]byte(nil), frame...)
		frames := [][]byte{frame, append([]byte(nil), frame...)} // twice: the second finds the association
		acts := make([]Action, len(frames))
		e.Process(frames, acts, uint32(clock))
		e.Sweep(128, uint32(clock)+1000)
		c := published(e)
		var toServers uint64
		for _, n := range c.ServerPackets {
			toServers += n
		}
		if c.RxPackets != 2 || toServers+c.Dropped() != 2 {
			t.Fatalf("2 frames: rx %d, to servers %d, dropped %d", c.RxPackets, toServers, c.Dropped())
		}
		for i, a := range acts {
			if a != Transmit {
				continue
			}
			if len(frames[i]) != len(in) || !bytes.Equal(frames[i][12:], in[12:]) {
				t.Fatalf("frame %d transmitted with changes beyond the MACs", i)
			}
		}
	})
}
