package packet_test

import (
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// TestZeroAllocs holds the fast path's budget: no allocation per packet for
// Parse on any fixture, accepted or not, for Encode into a preallocated
// buffer, and for the NAT helpers.
func TestZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocation behaviour")
	}
	cases := parseCases(t)
	var f packet.Flow
	if n := testing.AllocsPerRun(100, func() {
		for i := range cases {
			packet.Parse(cases[i].frame, &f)
		}
	}); n != 0 {
		t.Errorf("Parse allocates %v times per run of %d frames", n, len(cases))
	}

	specs := encodeSpecs(t)
	buf := make([]byte, 2048)
	bad := spec(client4, vip6, packet.ProtoTCP)
	tcp4 := specs["v4/tcp"]
	if n := testing.AllocsPerRun(100, func() {
		for _, s := range specs {
			if _, err := packet.Encode(buf, &s); err != nil {
				t.Fatal(err)
			}
		}
		packet.Encode(buf, &bad)
		packet.Encode(buf[:10], &tcp4)
	}); n != 0 {
		t.Errorf("Encode allocates %v times per run", n)
	}

	frame := encode(t, specs["v4/tcp"])
	ip := packet.IPv4(frame[l3:])
	tcp := packet.TCP(frame[l4v4:])
	sctp := packet.SCTP(encode(t, specs["v4/sctp-init"])[l4v4:])
	if n := testing.AllocsPerRun(100, func() {
		ip.SetSrc(vip4.As4())
		ip.SetTTL(3)
		tcp.UpdateChecksumAddr4(client4.As4(), vip4.As4())
		tcp.SetDstPortWithChecksumUpdate(8080)
		sctp.SetChecksum(sctp.ComputeChecksum())
		_ = packet.Checksum(frame, 0)
	}); n != 0 {
		t.Errorf("NAT helpers allocate %v times per run", n)
	}
}
