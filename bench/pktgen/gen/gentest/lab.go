//go:build linux

// Package gentest is the generator's test lab: a veth pair between two
// throw-away network namespaces, the generator's end and a sink whose XDP
// program counts and drops every frame. The generator's tests, pktgen's and
// the benchmark harness's use it.
package gentest

import (
	"net"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/internal/netnstest"
)

// Interface names inside the lab's namespaces.
const (
	GenIf  = "pg0"
	SinkIf = "sink0"
)

// Lab is a veth pair GenIf (in Gen) <-> SinkIf (in Sink), with IPv6 off in
// both namespaces and no addresses, so nothing but the generator's frames
// crosses it, and a steer.CountDrop sink attached natively to SinkIf.
// Everything is removed at tb's cleanup.
type Lab struct {
	Gen, Sink *netnstest.NS
	// GenLink and SinkLink describe the two ends (index, MAC, MTU).
	GenLink, SinkLink net.Interface
	CountDrop         *steer.CountDrop
}

// NewLab builds the lab; it skips tb without root.
func NewLab(tb testing.TB) *Lab {
	tb.Helper()
	l := &Lab{Gen: netnstest.New(tb, "pg-gen"), Sink: netnstest.New(tb, "pg-sink")}
	for _, ns := range []*netnstest.NS{l.Gen, l.Sink} {
		ns.Run(tb, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1")
	}
	netnstest.Veth(tb, l.Gen, GenIf, l.Sink, SinkIf)
	l.GenLink, l.SinkLink = l.Gen.Link(tb, GenIf), l.Sink.Link(tb, SinkIf)

	var err error
	if l.CountDrop, err = steer.NewCountDrop(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.CountDrop.Close() })
	var att *steer.Attachment
	if err := l.Sink.Do(func() error {
		att, err = l.CountDrop.Attach(l.SinkLink.Index)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { att.Close() })
	return l
}

// SinkMAC returns the sink's MAC, the generator's destination MAC.
func (l *Lab) SinkMAC() [6]byte { return [6]byte(l.SinkLink.HardwareAddr) }

// Count returns the frames and bytes the sink has counted.
func (l *Lab) Count(tb testing.TB) (pkts, bytes uint64) {
	tb.Helper()
	pkts, bytes, err := l.CountDrop.Count()
	if err != nil {
		tb.Fatal(err)
	}
	return pkts, bytes
}

// WaitCount polls the sink until it has counted at least want frames or
// timeout passes, and returns the count then. The caller compares it with
// what it expects: a deadline, not a sleep, bounds the wait.
func (l *Lab) WaitCount(tb testing.TB, want uint64, timeout time.Duration) (pkts, bytes uint64) {
	tb.Helper()
	for deadline := time.Now().Add(timeout); ; {
		pkts, bytes = l.Count(tb)
		if pkts >= want || time.Now().After(deadline) {
			return pkts, bytes
		}
		time.Sleep(time.Millisecond)
	}
}
