package ha

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func testRecords() []record {
	return []record{
		{op: opUpsert, kind: 0, proto: 6, flags: 0x8, addr: netip.MustParseAddr("::ffff:203.0.113.7").As16(), port: 40000,
			age: 3, tag: 0xdeadbeef, set: "web", server: netip.MustParseAddr("198.51.100.11")},
		{op: opUpsert, kind: 0, proto: 17, nat: true, addr: netip.MustParseAddr("2001:db8::7").As16(), port: 53,
			set: "dns", server: netip.MustParseAddr("2001:db8:100::12")},
		{op: opDelete, kind: 1, addr: netip.MustParseAddr("::ffff:203.0.113.0").As16(), set: "web"},
	}
}

// TestRecordsRoundTrip: what a sender encodes, a receiver decodes the same.
func TestRecordsRoundTrip(t *testing.T) {
	want := testRecords()
	var body []byte
	for i := range want {
		body = appendRecord(body, &want[i])
		if len(body) == 0 {
			t.Fatal("empty encoding")
		}
	}
	got, err := decodeRecords(body, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeRecords(appendRecord(x)) = %+v, %v; want %+v", got, err, want)
	}
	n := 0
	for i := range want {
		n += recordLen(&want[i])
	}
	if n != len(body) {
		t.Errorf("recordLen sum = %d, want the encoding's %d", n, len(body))
	}
	// Every strict prefix that does not end on a record boundary fails.
	ends := map[int]bool{0: true}
	off := 0
	for i := range want {
		off += recordLen(&want[i])
		ends[off] = true
	}
	for cut := 1; cut < len(body); cut++ {
		if _, err := decodeRecords(body[:cut], nil); (err == nil) != ends[cut] {
			t.Errorf("decodeRecords(first %d bytes) error = %v, want an error: %v", cut, err, !ends[cut])
		}
	}
}

// TestSealOpen: a sealed message opens under the same key with its header
// and body; a flipped bit anywhere, another key, or a cut are rejected.
func TestSealOpen(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := newSealer(key)
	h := header{typ: msgChanges, epoch: 7, seq: 42, time: 1234567, aux: 9}
	body := appendRecord(nil, &testRecords()[0])
	msg := s.seal(h, body)
	gh, gb, err := newSealer(key).open(msg)
	if err != nil || gh != h || string(gb) != string(body) {
		t.Fatalf("open(seal(h, body)) = %+v, %x, %v; want %+v, %x", gh, gb, err, h, body)
	}
	for i := range msg {
		bad := append([]byte(nil), msg...)
		bad[i] ^= 0x01
		_, _, err := s.open(bad)
		want := errForged
		if i == 6 || i == 7 {
			want = errTruncated // the length field no longer matches
		}
		if !errors.Is(err, want) {
			t.Errorf("open(message with byte %d flipped) = %v, want %v", i, err, want)
		}
	}
	if _, _, err := newSealer([]byte("another key of 32 bytes........")).open(msg); !errors.Is(err, errForged) {
		t.Errorf("open under another key = %v, want %v", err, errForged)
	}
	for _, cut := range []int{1, macLen, len(msg) - headerLen} {
		if _, _, err := s.open(msg[:len(msg)-cut]); !errors.Is(err, errTruncated) {
			t.Errorf("open(message cut by %d bytes) = %v, want %v", cut, err, errTruncated)
		}
	}
}
