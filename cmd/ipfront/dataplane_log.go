package main

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/slowpath/config"
)

// hugePages translates [dataplane] huge_pages ("" is auto).
func hugePages(v string) xsk.HugePages {
	switch v {
	case config.HugePagesOn:
		return xsk.HugeOn
	case config.HugePagesOff:
		return xsk.HugeOff
	}
	return xsk.HugeAuto
}

// logSockets reports what the kernel gave the data plane's sockets: one
// summary line, each socket at debug level, and every distinct reason for a
// fallback (no huge pages, busy polling refused) once, not once per queue.
func logSockets(log zerolog.Logger, reps []fastpath.SocketReport) {
	if len(reps) == 0 {
		return
	}
	var zc, huge, thp, asked, busy int
	umemWhy := map[string]bool{}
	busyWhy := map[string]bool{}
	for _, r := range reps {
		if r.ZeroCopy {
			zc++
		}
		switch r.UMEM.Kind {
		case xsk.PagesHugeTLB:
			huge++
		case xsk.PagesTHP:
			thp++
		}
		if r.UMEM.Fallback != nil {
			umemWhy[r.UMEM.Fallback.Error()] = true
		}
		if r.BusyPollAsked {
			asked++
			if r.BusyPoll.Enabled {
				busy++
			} else if r.BusyPoll.Err != nil {
				busyWhy[r.BusyPoll.Err.Error()] = true
			}
		}
		log.Debug().Str("worker", fmt.Sprintf("%s/%d", r.Interface, r.Queue)).Bool("zero_copy", r.ZeroCopy).
			Str("umem", r.UMEM.String()).Bool("busy_poll_asked", r.BusyPollAsked).Bool("busy_poll", r.BusyPoll.Enabled).
			Msg("AF_XDP socket")
	}
	n := len(reps)
	ev := log.Info().Int("sockets", n).
		Str("zero_copy", fmt.Sprintf("%d/%d", zc, n)).
		Str("umem_hugetlb", fmt.Sprintf("%d/%d", huge, n)).
		Str("umem_thp", fmt.Sprintf("%d/%d", thp, n))
	if asked > 0 {
		ev = ev.Str("prefer_busy_poll", fmt.Sprintf("%d/%d", busy, asked))
	}
	ev.Msg("AF_XDP sockets open")
	for why := range umemWhy {
		log.Info().Str("reason", why).Msg("UMEM not (all) on hugetlb pages")
	}
	for why := range busyWhy {
		log.Warn().Str("reason", why).Int("sockets", asked-busy).
			Msg("preferred busy polling refused by the kernel: idle workers spin and sleep without it")
	}
}
