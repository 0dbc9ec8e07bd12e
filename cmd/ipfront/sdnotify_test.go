package main

import (
	"net"
	"path/filepath"
	"testing"
)

// TestSdNotify: the state reaches the socket named by $NOTIFY_SOCKET as
// one datagram of newline-separated assignments, and without the variable
// nothing is sent and nothing fails (a daemon started by hand).
func TestSdNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Skipf("unix datagram sockets unavailable: %v", err)
	}
	defer l.Close()

	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("sdNotify without NOTIFY_SOCKET = %v, want nil", err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdNotify("READY=1", "STATUS=serving generation 1"); err != nil {
		t.Fatalf("sdNotify = %v", err)
	}
	buf := make([]byte, 256)
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "READY=1\nSTATUS=serving generation 1"; got != want {
		t.Errorf("datagram = %q, want %q", got, want)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if err := sdNotify("READY=1"); err == nil {
		t.Error("sdNotify to a relative NOTIFY_SOCKET = nil, want an error")
	}
}
