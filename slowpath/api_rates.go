package slowpath

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfront/ipfront/fastpath"
)

// sampler turns counters into rates: every interval it reads the workers'
// counters, compares them with the previous reading and publishes the
// rates of the interval between. A reading is a few thousand atomic loads
// per worker into buffers the sampler keeps, so sampling leaves no garbage
// behind and the workers never notice.
type sampler struct {
	interval time.Duration

	mu        sync.Mutex // serialises sample; guards the fields below
	scratch   fastpath.Counters
	total     fastpath.Counters
	have      bool // prev* hold a reading
	prevAt    time.Time
	prevPkts  [fastpath.MaxSets * fastpath.MaxServers]uint64
	prevBytes [fastpath.MaxSets * fastpath.MaxServers]uint64
	prevRx    map[string]uint64 // packets by worker name
	prevTx    map[string]uint64

	rates atomic.Pointer[rateTable] // published by sample, read by handlers
}

// rateTable holds per-second rates over one interval. It is immutable once
// published; servers and workers with no traffic in the interval are
// absent.
type rateTable struct {
	interval time.Duration
	server   map[int][2]float64    // packets, bits per second by counter index
	worker   map[string][2]float64 // rx, tx packets per second by worker name
}

func newSampler(interval time.Duration) *sampler { return &sampler{interval: interval} }

// run samples every interval until stop is closed.
func (s *sampler) run(sample func(time.Time), stop <-chan struct{}) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			sample(now)
		}
	}
}

// sample reads p's counters at now and, from the second reading on,
// publishes the rates since the previous one.
func (s *sampler) sample(now time.Time, p Plane) {
	s.mu.Lock()
	defer s.mu.Unlock()
	workers := p.Workers()
	s.total = fastpath.Counters{}
	rx, tx := make(map[string]uint64, len(workers)), make(map[string]uint64, len(workers))
	for i := range workers {
		workers[i].Snapshot(&s.scratch)
		s.total.Add(&s.scratch)
		name := workers[i].Name()
		rx[name], tx[name] = s.scratch.RxPackets, s.scratch.TxPackets
	}
	if dt := now.Sub(s.prevAt).Seconds(); s.have && dt > 0 {
		per := func(cur, prev uint64) float64 {
			if cur < prev {
				return 0 // counters restarted
			}
			return float64(cur-prev) / dt
		}
		rt := &rateTable{interval: now.Sub(s.prevAt), server: map[int][2]float64{}, worker: map[string][2]float64{}}
		for j := range s.total.ServerPackets {
			if p, b := s.total.ServerPackets[j], s.total.ServerBytes[j]; p != s.prevPkts[j] || b != s.prevBytes[j] {
				rt.server[j] = [2]float64{per(p, s.prevPkts[j]), 8 * per(b, s.prevBytes[j])}
			}
		}
		for name, n := range rx {
			if prev, ok := s.prevRx[name]; ok {
				rt.worker[name] = [2]float64{per(n, prev), per(tx[name], s.prevTx[name])}
			}
		}
		s.rates.Store(rt)
	}
	s.have, s.prevAt, s.prevRx, s.prevTx = true, now, rx, tx
	s.prevPkts, s.prevBytes = s.total.ServerPackets, s.total.ServerBytes
}

// current returns the rates last published; zero until two readings exist.
func (s *sampler) current() rates { return rates{s.rates.Load()} }

// rates answers rate queries on one published table (or none).
type rates struct{ t *rateTable }

// interval is the length of the interval the rates cover.
func (r rates) interval() time.Duration {
	if r.t == nil {
		return 0
	}
	return r.t.interval
}

// server returns a server's packets and bits per second by counter index.
func (r rates) server(j int) (pps, bps float64) {
	if r.t == nil {
		return 0, 0
	}
	v := r.t.server[j]
	return v[0], v[1]
}

// worker returns a worker's received and transmitted packets per second.
func (r rates) worker(name string) (rx, tx float64) {
	if r.t == nil {
		return 0, 0
	}
	v := r.t.worker[name]
	return v[0], v[1]
}
