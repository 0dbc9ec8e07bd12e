// Package apitest fakes the daemon and the data plane behind the control
// API, so the API and its clients can be tested without root: a Backend
// with a fixed spec whose drain state and reload outcome a test controls,
// and a Plane whose workers hold real association shards and counters the
// test sets.
package apitest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// Spec parses a configuration document or fails the test.
func Spec(tb testing.TB, text string) *config.Spec {
	tb.Helper()
	spec, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		tb.Fatalf("parse test config: %v", err)
	}
	return spec
}

// Backend is a fake slowpath.Backend. Its servers start healthy, resolved
// and at their configured weight; SetDrained changes them as the daemon
// would. Safe for concurrent use.
type Backend struct {
	mu        sync.Mutex
	ready     bool
	gen       uint64
	spec      *config.Spec
	servers   []slowpath.ServerState
	alarms    []slowpath.Alarm
	reloadErr error
	reloads   int
	// notApplied is what a successful Reload reports as needing a restart.
	notApplied []string
	plane      *Plane
}

var _ slowpath.Backend = (*Backend)(nil)

// NewBackend returns a ready backend at generation 1 serving spec.
func NewBackend(spec *config.Spec) *Backend {
	b := &Backend{ready: true, gen: 1, spec: spec}
	for _, ts := range spec.TargetSets {
		for _, s := range ts.Servers {
			st := slowpath.ServerState{Set: ts.Name, Name: s.Name, Address: s.Address,
				Weight: s.Weight, EffectiveWeight: uint32(s.Weight), Healthy: true, Resolved: true}
			for _, r := range s.OwnedPorts {
				st.OwnedPorts = append(st.OwnedPorts, r.String())
			}
			b.servers = append(b.servers, st)
		}
	}
	return b
}

// Ready implements slowpath.Backend.
func (b *Backend) Ready() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.ready }

// Generation implements slowpath.Backend.
func (b *Backend) Generation() uint64 { b.mu.Lock(); defer b.mu.Unlock(); return b.gen }

// Spec implements slowpath.Backend.
func (b *Backend) Spec() *config.Spec { b.mu.Lock(); defer b.mu.Unlock(); return b.spec }

// Plane implements slowpath.Backend: the Plane SetPlane gave, or nil (no
// data plane running).
func (b *Backend) Plane() slowpath.Plane {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.plane == nil {
		return nil // a nil *Plane in the interface would not read as nil
	}
	return b.plane
}

// SetPlane makes p the data plane Plane reports; nil means none runs.
func (b *Backend) SetPlane(p *Plane) { b.mu.Lock(); b.plane = p; b.mu.Unlock() }

// Servers implements slowpath.Backend.
func (b *Backend) Servers() []slowpath.ServerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.servers)
}

// Alarms implements slowpath.Backend.
func (b *Backend) Alarms() []slowpath.Alarm {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.alarms)
}

// AlarmsRaised implements slowpath.Backend: the alarms SetAlarms gave,
// counted per set.
func (b *Backend) AlarmsRaised() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]uint64{}
	for _, a := range b.alarms {
		if a.Kind != slowpath.AlarmTableFull {
			out[a.Set]++
		}
	}
	return out
}

// TableFullRaised implements slowpath.Backend: the table-full alarms
// SetAlarms gave, counted per worker.
func (b *Backend) TableFullRaised() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]uint64{}
	for _, a := range b.alarms {
		if a.Kind == slowpath.AlarmTableFull {
			out[a.Worker]++
		}
	}
	return out
}

// Reload implements slowpath.Backend: it fails with the error SetReloadError
// chose, else bumps the generation and reports the keys SetNotApplied gave.
func (b *Backend) Reload(context.Context) (slowpath.ReloadReply, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	if b.reloadErr != nil {
		return slowpath.ReloadReply{}, b.reloadErr
	}
	b.gen++
	return slowpath.ReloadReply{Generation: b.gen, NotApplied: slices.Clone(b.notApplied)}, nil
}

// SetNotApplied sets the keys every later successful Reload reports as
// not applied.
func (b *Backend) SetNotApplied(keys []string) { b.mu.Lock(); b.notApplied = keys; b.mu.Unlock() }

// SetDrained implements slowpath.Backend like the daemon: server is a name
// or an address; a drained server's effective weight is 0.
func (b *Backend) SetDrained(_ context.Context, set, server string, drained bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	known := false
	for i := range b.servers {
		s := &b.servers[i]
		if s.Set != set {
			continue
		}
		known = true
		if s.Name != server && s.Address.String() != server {
			continue
		}
		s.Drained, s.EffectiveWeight = drained, uint32(s.Weight)
		if drained {
			s.EffectiveWeight = 0
		}
		b.gen++
		return nil
	}
	if !known {
		return fmt.Errorf("no target set %q: %w", set, slowpath.ErrUnknownServer)
	}
	return fmt.Errorf("target set %q has no server %q: %w", set, server, slowpath.ErrUnknownServer)
}

// SetReady sets what Ready reports.
func (b *Backend) SetReady(ready bool) { b.mu.Lock(); b.ready = ready; b.mu.Unlock() }

// SetAlarms sets what Alarms reports.
func (b *Backend) SetAlarms(a []slowpath.Alarm) { b.mu.Lock(); b.alarms = a; b.mu.Unlock() }

// SetReloadError makes every later Reload fail with err (nil: succeed).
func (b *Backend) SetReloadError(err error) { b.mu.Lock(); b.reloadErr = err; b.mu.Unlock() }

// Reloads counts calls to Reload.
func (b *Backend) Reloads() int { b.mu.Lock(); defer b.mu.Unlock(); return b.reloads }

// UpdateServer changes the state of the server at addr in set.
func (b *Backend) UpdateServer(set string, addr netip.Addr, fn func(*slowpath.ServerState)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.servers {
		if b.servers[i].Set == set && b.servers[i].Address == addr {
			fn(&b.servers[i])
		}
	}
}

// Plane is a fake slowpath.Plane: one interface, workers with real shards,
// and tables built from a spec as the daemon builds them (every MAC known).
type Plane struct {
	ifc     fastpath.Interface
	tables  *fastpath.Tables
	workers []*Worker

	mu       sync.Mutex
	steering fastpath.SteeringCounts
}

var _ slowpath.Plane = (*Plane)(nil)

// Worker is a fake worker. The test goroutine owns its shard (Associate)
// while no request is being served; handlers only read it.
type Worker struct {
	Interface string
	Queue     int
	CPU       int
	Shard     *assoc.Shard

	mu sync.Mutex
	c  fastpath.Counters
}

// NewPlane builds generation-1 tables of spec on interface "eth1" (ifindex
// 3) and one worker per CPU in cpus (queue i pinned to cpus[i]; -1 for
// none), each with a shard of shardLimit associations.
func NewPlane(tb testing.TB, spec *config.Spec, shardLimit int, cpus ...int) *Plane {
	tb.Helper()
	mac := func(int, netip.Addr) ([6]byte, bool) { return [6]byte{2, 0, 0, 0, 0, 1}, true }
	t, _, err := slowpath.Build(spec, slowpath.NewIdentity(), slowpath.Inputs{Interfaces: 1, MACs: mac, Generation: 1})
	if err != nil {
		tb.Fatalf("build tables: %v", err)
	}
	p := &Plane{ifc: fastpath.Interface{Name: "eth1", Index: 3}, tables: t}
	for q, cpu := range cpus {
		sh, err := assoc.NewShard(shardLimit)
		if err != nil {
			tb.Fatal(err)
		}
		p.ifc.Queues = append(p.ifc.Queues, q)
		p.workers = append(p.workers, &Worker{Interface: "eth1", Queue: q, CPU: cpu, Shard: sh})
	}
	return p
}

// Interfaces implements slowpath.Plane.
func (p *Plane) Interfaces() []fastpath.Interface { return []fastpath.Interface{p.ifc} }

// Tables implements slowpath.Plane.
func (p *Plane) Tables() *fastpath.Tables { return p.tables }

// SteeringStats implements slowpath.Plane.
func (p *Plane) SteeringStats() (fastpath.SteeringCounts, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.steering, nil
}

// SetSteering sets what SteeringStats reports.
func (p *Plane) SetSteering(c fastpath.SteeringCounts) {
	p.mu.Lock()
	p.steering = c
	p.mu.Unlock()
}

// Workers implements slowpath.Plane.
func (p *Plane) Workers() []slowpath.PlaneWorker {
	out := make([]slowpath.PlaneWorker, len(p.workers))
	for i, w := range p.workers {
		out[i] = slowpath.PlaneWorker{Interface: w.Interface, Queue: w.Queue, CPU: w.CPU, Snapshot: w.snapshot, Assoc: w.Shard}
	}
	return out
}

// Worker returns worker i.
func (p *Plane) Worker(i int) *Worker { return p.workers[i] }

// Slot returns the set id, slot and slot generation of a server.
func (p *Plane) Slot(tb testing.TB, set string, addr netip.Addr) (id uint16, slot uint8, gen uint32) {
	tb.Helper()
	for _, ts := range p.tables.Sets() {
		if ts.Name != set {
			continue
		}
		for i, s := range ts.Servers {
			if s.Present && s.Addr == addr {
				return ts.ID, uint8(i), s.Gen
			}
		}
	}
	tb.Fatalf("no server %s in set %q", addr, set)
	return 0, 0, 0
}

// AddServerTraffic counts packets and bytes to a server on worker w.
func (p *Plane) AddServerTraffic(tb testing.TB, w int, set string, addr netip.Addr, packets, bytes uint64) {
	tb.Helper()
	id, slot, _ := p.Slot(tb, set, addr)
	j := int(id)*fastpath.MaxServers + int(slot)
	p.workers[w].Update(func(c *fastpath.Counters) {
		c.ServerPackets[j] += packets
		c.ServerBytes[j] += bytes
	})
}

// Associate binds client:port (protocol proto) to the server at addr in
// set on worker w, last seen at clock reading seen. gen is added to the
// slot's generation: pass 1 to make an association whose server has since
// left the slot.
func (p *Plane) Associate(tb testing.TB, w int, client netip.Addr, port uint16, proto uint8, set string, addr netip.Addr, gen uint32, seen uint32) {
	tb.Helper()
	id, slot, g := p.Slot(tb, set, addr)
	k := assoc.Key{Addr: client.As16(), Port: port, Proto: proto, Set: id}
	sh := p.workers[w].Shard
	idx, _ := sh.Find(&k, k.Hash())
	if idx < 0 {
		tb.Fatalf("worker %d: association table full", w)
	}
	sh.Put(idx, &k, assoc.Value{Server: slot, Gen: g + gen, LastSeen: seen})
}

// Update changes the worker's published counters.
func (w *Worker) Update(fn func(*fastpath.Counters)) {
	w.mu.Lock()
	fn(&w.c)
	w.mu.Unlock()
}

func (w *Worker) snapshot(out *fastpath.Counters) {
	w.mu.Lock()
	*out = w.c
	w.mu.Unlock()
}

// ScenarioTOML is the configuration the API and ctl tests serve: set "web"
// (IPv4, TCP 80 and 443, servers web-a and web-b weighted 1:3) and set "dns"
// (IPv6, UDP 53, one unnamed server).
const ScenarioTOML = `
[dataplane]
interfaces = ["eth1"]

[[target_set]]
name = "web"
address = "192.0.2.10"
protocols = ["tcp"]
ports = ["80", "443"]
delete_age = "30s"
  [[target_set.server]]
  name = "web-a"
  address = "198.51.100.11"
  weight = 1
  [[target_set.server]]
  name = "web-b"
  address = "198.51.100.12"
  weight = 3

[[target_set]]
name = "dns"
address = "2001:db8::53"
protocols = ["udp"]
ports = ["53"]
  [[target_set.server]]
  address = "2001:db8::1"
`
