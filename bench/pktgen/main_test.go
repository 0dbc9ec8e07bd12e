package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/bench/pktgen/gen"
	"github.com/ipfront/ipfront/bench/pktgen/gen/gentest"
)

// TestRunToSink runs the command as the harness does (-o json) in a veth lab:
// it sends exactly --count frames, reports them in one JSON object, and the
// sink on the other end counts exactly those.
func TestRunToSink(t *testing.T) {
	l := gentest.NewLab(t)
	const count = 10000
	mac := net.HardwareAddr(l.SinkLink.HardwareAddr).String()
	before, _ := l.Count(t)
	var out, errOut bytes.Buffer
	if err := l.Gen.Do(func() error {
		return run(context.Background(), []string{
			"--dev", gentest.GenIf, "--dst-mac", mac, "--proto", "udp",
			"--src-count", "10", "--sport-count", "100", "--count", "10000", "-o", "json",
		}, &out, &errOut)
	}); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	dec := json.NewDecoder(&out)
	var res gen.Result
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("decode JSON %q: %v", out.String(), err)
	}
	if dec.More() {
		t.Error("more than one JSON value on stdout")
	}
	if res.Sent != count || res.Completed != count || res.Size != 64 || res.Flows != 1000 || res.Proto != gen.UDP ||
		res.PPS <= 0 || res.Elapsed <= 0 {
		t.Errorf("result %+v; want %d sent and completed, 64-byte UDP, 1000 flows", res, count)
	}
	if pkts, bytes := l.WaitCount(t, before+count, 5*time.Second); pkts-before != count || bytes != (pkts-before)*64 {
		t.Errorf("sink counted %d frames, %d bytes; want %d, %d", pkts-before, bytes, count, count*64)
	}

	// Text output, IPv6 SCTP INIT with the default size.
	out.Reset()
	if err := l.Gen.Do(func() error {
		return run(context.Background(), []string{
			"--dev", gentest.GenIf, "--dst-mac", mac, "--proto", "sctp-init", "--dst", "2001:db8::10",
			"--count", "500", "--flow-order", "random", "--cpu", "0",
		}, &out, &errOut)
	}); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"sctp-init over IPv6, 86-byte frames", "sent      500 frames in", "pps", "tx dropped 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want error
	}{
		{[]string{}, errUsage},
		{[]string{"--dev", "x", "extra"}, errUsage},
		{[]string{"--dev", "x", "--proto", "icmp"}, errUsage},
		{[]string{"--dev", "x", "-o", "xml"}, errUsage},
		{[]string{"--dev", "x", "--flow-order", "zigzag"}, errUsage},
		{[]string{"--dev", "x", "--xdp-mode", "fast"}, errUsage},
		{[]string{"--dev", "x", "--ipv6", "--dst", "192.0.2.1"}, errUsage},
		{[]string{"--dev", "x", "--src", "2001:db8::1", "--dst", "192.0.2.1"}, errUsage},
		{[]string{"--dev", "x", "--dst-mac", "02:00:00:00:00"}, errUsage},
		{[]string{"--dev", "x", "--src", "nonsense"}, errUsage},
		{[]string{"--dev", "x", "--sport-first", "0"}, errUsage},
		{[]string{"--dev", "x", "--dport", "65536"}, errUsage},
		{[]string{"--dev", "x", "--sctp-tag", "0"}, errUsage},
		// Caught by gen's checks before any interface is touched.
		{[]string{"--dev", "x", "--size", "40"}, gen.ErrConfig},
		{[]string{"--dev", "x", "--ipv6", "--proto", "tcp-syn", "--size", "64"}, gen.ErrConfig},
		{[]string{"--dev", "x", "--ring", "1000"}, gen.ErrConfig},
		{[]string{"--dev", "x", "--src-count", "70000", "--sport-count", "1000", "--flow-order", "random"}, gen.ErrConfig},
		{[]string{"-h"}, flag.ErrHelp},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if !errors.Is(err, tc.want) {
			t.Errorf("run(%q) = %v, want %v", tc.args, err, tc.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		src, dst string
		ipv6     bool
		want     [2]string
	}{
		{"", "", false, [2]string{"198.51.100.2", "192.0.2.10"}},
		{"", "", true, [2]string{"2001:db8:100::2", "2001:db8::10"}},
		{"", "2001:db8::99", false, [2]string{"2001:db8:100::2", "2001:db8::99"}},
		{"2001:db8:1::1", "", false, [2]string{"2001:db8:1::1", "2001:db8::10"}},
		{"10.0.0.1", "10.0.0.2", false, [2]string{"10.0.0.1", "10.0.0.2"}},
	} {
		s, d, err := addresses(tc.src, tc.dst, tc.ipv6)
		if err != nil || s != netip.MustParseAddr(tc.want[0]) || d != netip.MustParseAddr(tc.want[1]) {
			t.Errorf("addresses(%q, %q, %v) = %v, %v, %v; want %v", tc.src, tc.dst, tc.ipv6, s, d, err, tc.want)
		}
	}
}
