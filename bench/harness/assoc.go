//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/ipfront/ipfront/fastpath/assoc"
)

// assocMem is the memory of one association shard filled to its limit.
type assocMem struct {
	Entries     int
	ShardBytes  int     // Shard.Bytes()
	PerEntry    float64 // Bytes() / entries
	RSSPerEntry float64 // resident-set growth / entries, once every entry is live
	HeapPerEnt  float64 // Go heap growth / entries
	FillNs      float64 // ns per insert (Find + Put), in this process
	Err         error
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// measureAssoc allocates a shard for n associations, fills it with n live
// ones (distinct IPv4 clients, TCP) and reports its footprint three ways.
func measureAssoc(n int) assocMem {
	m := assocMem{Entries: n}
	runtime.GC()
	debug.FreeOSMemory()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	rss0 := rssBytes()
	s, err := assoc.NewShard(n)
	if err != nil {
		m.Err = err
		return m
	}
	var k assoc.Key
	k.Addr[10], k.Addr[11] = 0xff, 0xff
	k.Proto, k.Set = 6, 1
	start := time.Now()
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(k.Addr[12:], 0x0a000000+uint32(i>>4))
		k.Port = 1024 + uint16(i&15)
		idx, found := s.Find(&k, k.Hash())
		if found || idx < 0 {
			m.Err = fmt.Errorf("insert %d of %d: found %v, slot %d", i, n, found, idx)
			return m
		}
		s.Put(idx, &k, assoc.Value{Server: uint8(i & 15), Gen: 1, LastSeen: 1})
	}
	m.FillNs = float64(time.Since(start).Nanoseconds()) / float64(n)
	if s.Live() != n {
		m.Err = fmt.Errorf("live %d after %d inserts", s.Live(), n)
	}
	runtime.ReadMemStats(&ms1)
	rss1 := rssBytes()
	m.ShardBytes = s.Bytes()
	m.PerEntry = float64(s.Bytes()) / float64(n)
	m.RSSPerEntry = float64(rss1-rss0) / float64(n)
	m.HeapPerEnt = float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc)) / float64(n)
	runtime.KeepAlive(s)
	s = nil
	runtime.GC()
	debug.FreeOSMemory()
	return m
}
