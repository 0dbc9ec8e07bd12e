//go:build linux

package netnstest

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/internal/nsutil"
)

func TestNamespacesAndVeth(t *testing.T) {
	a := New(t, "a")
	b := New(t, "b")
	if a.Name == b.Name {
		t.Fatalf("New returned the same name twice: %s", a.Name)
	}
	Veth(t, a, "va", b, "vb")
	a.Run(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "va")
	b.Run(t, "ip", "addr", "add", "192.0.2.2/24", "dev", "vb")

	// The veth ends exist only inside the namespaces.
	if _, err := net.InterfaceByName("va"); err == nil {
		t.Fatal("va visible in the root namespace")
	}
	la := a.Link(t, "va")
	if la.Index == 0 || len(la.HardwareAddr) != 6 {
		t.Fatalf("Link(va) = %+v", la)
	}

	// A UDP socket made inside a.Do belongs to a, and can be used outside.
	var conn *net.UDPConn
	if err := a.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sender *net.UDPConn
	if err := b.Do(func() error {
		var err error
		sender, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	if _, err := sender.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "hello" || !from.IP.Equal(net.IPv4(192, 0, 2, 2)) {
		t.Fatalf("got %q from %v, want hello from 192.0.2.2", buf[:n], from)
	}

	// Do restored the thread it ran on: va is still invisible here.
	for range 10 {
		if _, err := net.InterfaceByName("va"); err == nil {
			t.Fatal("va visible in the root namespace after Do")
		}
	}
}

func TestCleanupRemovesNamespace(t *testing.T) {
	RequireRoot(t)
	var name string
	t.Run("inner", func(t *testing.T) {
		name = New(t, "c").Name
	})
	if _, err := os.Stat(nsutil.Dir + "/" + name); !os.IsNotExist(err) {
		t.Fatalf("namespace %s still exists after cleanup (stat: %v)", name, err)
	}
	if !strings.HasPrefix(name, namePrefix+"-c-") {
		t.Fatalf("name %q lacks prefix", name)
	}
}

func TestFrameChecksums(t *testing.T) {
	for _, f := range []Frame{
		{Src: netip.MustParseAddrPort("192.0.2.2:1000"), Dst: netip.MustParseAddrPort("192.0.2.1:2000"), Payload: []byte("abc")},
		{Src: netip.MustParseAddrPort("[2001:db8::2]:1000"), Dst: netip.MustParseAddrPort("[2001:db8::1]:2000"), Payload: []byte("abcd"), VLANs: []uint16{5}},
	} {
		b := f.Encode()
		l3 := 14 + 4*len(f.VLANs)
		var udp int
		var pseudo []byte
		if f.Src.Addr().Is4() {
			if got := fold(sum(b[l3:l3+20], 0)); got != 0xffff {
				t.Errorf("IPv4 header sums to %#x, want 0xffff", got)
			}
			udp = l3 + 20
			pseudo = append(append([]byte{}, b[l3+12:l3+20]...), 0, 17, 0, byte(len(b)-udp))
		} else {
			udp = l3 + 40
			pseudo = append(append([]byte{}, b[l3+8:l3+40]...), 0, 17, 0, byte(len(b)-udp))
		}
		if got := fold(sum(b[udp:], sum(pseudo, 0))); got != 0xffff {
			t.Errorf("UDP sums to %#x, want 0xffff", got)
		}
	}
}

func TestDisableOffloads(t *testing.T) {
	a, b := New(t, "oa"), New(t, "ob")
	Veth(t, a, "va", b, "vb")
	txcsum := func() uint32 {
		var v uint32
		if err := a.Do(func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			v, err = nsutil.Ethtool(fd, "va", unix.ETHTOOL_GTXCSUM, 0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if txcsum() != 1 {
		t.Fatal("veth starts without TX checksum offload; test assumption broken")
	}
	DisableOffloads(t, a, "va")
	if got := txcsum(); got != 0 {
		t.Errorf("TX checksum offload after DisableOffloads = %d, want 0", got)
	}
}
