//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
	"github.com/ipfront/ipfront/internal/netnstest"
)

// asMain makes the test binary act as iplab, so the tests run the real
// commands in lab namespaces without building anything.
const asMain = "IPLAB_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Setenv(asMain, "1") // for the children only: checked above
	os.Exit(m.Run())
}

func TestParsePorts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"7000", []int{7000}},
		{"7000-7002", []int{7000, 7001, 7002}},
		{"80, 7000-7001,80", []int{80, 7000, 7001}},
		{"", nil},
	} {
		got, err := parsePorts(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parsePorts(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"0", "65536", "x", "7010-7000", "1-", "-5"} {
		if got, err := parsePorts(in); err == nil {
			t.Errorf("parsePorts(%q) = %v, want an error", in, got)
		}
	}
}

func TestPayloadDeterministic(t *testing.T) {
	a, b, c := payloadFor(1, 7, 100), payloadFor(1, 7, 100), payloadFor(1, 8, 100)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Error("payloadFor: want equal payloads for equal (seed, conn) and different ones otherwise")
	}
}

// directLab is a lab whose servers run "iplab serve" and whose client
// reaches the VIPs through server s2 directly (no ipfront).
func directLab(t *testing.T) *lab.Lab {
	t.Helper()
	netnstest.RequireRoot(t)
	l, err := lab.New(lab.UniquePrefix("iplab"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	servers, err := l.StartServers(ctx, os.Args[0], "7000-7002", "7000-7002", func(role string) io.Writer {
		return &lab.PrefixWriter{W: testLog{t}, Prefix: role + " | ", Mu: &mu}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			if err := s.Stop(5 * time.Second); err != nil {
				t.Errorf("server did not exit cleanly on SIGTERM: %v", err)
			}
		}
	})
	if err := l.RouteVIPsVia(l.Server(2)); err != nil {
		t.Fatal(err)
	}
	return l
}

type testLog struct{ t *testing.T }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// runJSON runs "iplab args... -o json" in the client namespace and returns
// its output and exit code.
func runJSON(t *testing.T, l *lab.Lab, args ...string) (stdout, stderr *bytes.Buffer, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := l.CommandContext(ctx, l.Client().NS, append(append([]string{os.Args[0]}, args...), "-o", "json")...)
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr, code
}

// client runs "iplab args... -o json" in the client namespace, decodes the
// report into r and returns the exit code.
func client(t *testing.T, l *lab.Lab, r any, args ...string) int {
	t.Helper()
	stdout, stderr, code := runJSON(t, l, args...)
	if err := json.Unmarshal(stdout.Bytes(), r); err != nil {
		t.Fatalf("iplab %v: exit %d, report unreadable: %v\n%s\n%s", args, code, err, stdout.Bytes(), stderr.Bytes())
	}
	return code
}

func TestTCPDirect(t *testing.T) {
	l := directLab(t)
	for _, c := range []struct {
		vip   string
		sport string
	}{
		{l.VIP(false).String(), "0"},
		{l.VIP(true).String(), "0"},
		{l.VIP(false).String(), "21000"},
	} {
		var r lab.TCPReport
		code := client(t, l, &r, "tcp", "--vip", c.vip, "--port", "7002", "--conns", "60", "--parallel", "8",
			"--bytes", "200000", "--sport", c.sport)
		if code != 0 || r.OK != 60 || r.Failed != 0 || r.BytesVerified != 60*200000 {
			t.Errorf("tcp %s sport %s: exit %d, %+v; want 60 ok connections, 12000000 bytes verified", c.vip, c.sport, code, r)
		}
		if want := map[string]int{"s2": 60}; !reflect.DeepEqual(r.Servers, want) {
			t.Errorf("tcp %s: servers %v, want %v", c.vip, r.Servers, want)
		}
		if r.DistinctSourcePorts != 60 || r.DuplicateSourcePorts != 0 {
			t.Errorf("tcp %s: %d distinct source ports, %d reused; want 60, 0", c.vip, r.DistinctSourcePorts, r.DuplicateSourcePorts)
		}
	}
}

func TestTCPReportsFailures(t *testing.T) {
	l := directLab(t)
	var r lab.TCPReport
	code := client(t, l, &r, "tcp", "--vip", l.VIP(false).String(), "--port", "7999", "--conns", "5")
	if code != 1 || r.OK != 0 || r.Failed != 5 || r.Reasons["dial: connection refused"] != 5 || len(r.Failures) != 5 {
		t.Errorf("tcp to a closed port: exit %d, %+v; want exit 1 and 5 refused dials", code, r)
	}
}

func TestUDPDirect(t *testing.T) {
	l := directLab(t)
	for _, vip := range []string{l.VIP(false).String(), l.VIP(true).String()} {
		var r lab.UDPReport
		// The client's sockets are connected to the VIP: replies only count
		// if the server sends them from the VIP, not its own address.
		code := client(t, l, &r, "udp", "--vip", vip, "--port", "7001", "--flows", "20", "--packets", "10", "--size", "1200")
		if code != 0 || r.Sent != 200 || r.Replies != 200 || r.Failed() {
			t.Errorf("udp %s: exit %d, %+v; want 200 replies and no failure", vip, code, r)
		}
		if want := map[string]int{"s2": 20}; !reflect.DeepEqual(r.Servers, want) {
			t.Errorf("udp %s: servers %v, want %v", vip, r.Servers, want)
		}
		if r.DistinctSourcePorts != 20 {
			t.Errorf("udp %s: %d distinct source ports, want 20", vip, r.DistinctSourcePorts)
		}
	}
}

func TestUDPReportsFailures(t *testing.T) {
	l := directLab(t)
	var r lab.UDPReport
	code := client(t, l, &r, "udp", "--vip", l.VIP(false).String(), "--port", "7999", "--flows", "3", "--packets", "2", "--timeout", "200ms")
	if code != 1 || r.Replies != 0 || r.SilentFlows != 3 || !r.Failed() {
		t.Errorf("udp to a closed port: exit %d, %+v; want exit 1, 3 silent flows", code, r)
	}
}
