package fastpath

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/ring"
	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/fastpath/xsk"
)

// Config is what the data plane needs to start, derived by the slow path from
// the validated configuration. It holds no kernel state.
type Config struct {
	Interfaces      []string
	Queues          []int // nil: every RX queue of each interface
	CPUs            []int // nil: workers are not pinned; else one per worker
	XDPMode         steer.XDPMode
	BusyPoll        bool
	BatchSize       int
	MaxAssociations int
	// MaxPersistenceRecords bounds the persistence records (persist.go),
	// split over the workers like MaxAssociations; shards are sized for
	// both.
	MaxPersistenceRecords int
	RingSize              uint32
	FrameSize             uint32
	Frames                uint32
	NeedWakeup            bool
	SocketMode            xsk.Mode
	// ShedOpenings: while a worker's RX ring is nearly full, its queue's
	// steering program drops openings to a VIP (overload.go).
	ShedOpenings bool
	// Idle mode (BusyPoll false) and bare-metal options; see
	// dataplane_idle.go.
	IdleSpin       time.Duration // keep polling this long after the last packet before sleeping
	PreferBusyPoll bool          // ask the kernel for preferred busy polling on each socket
	HugePages      xsk.HugePages // which pages back the UMEMs
	// Replicate turns on the workers' change rings for mated instances
	// (replicate.go; DrainChanges).
	Replicate bool
}

// Interface describes one interface the data plane forwards on.
type Interface struct {
	Name    string
	Index   int
	MAC     [6]byte
	XDPMode steer.XDPMode // mode the steering program got
	Queues  []int
}

// Dataplane owns the kernel objects of the fast path (steering programs,
// AF_XDP sockets) and the workers. Its methods are for the slow path and may
// be called from any goroutine; none of them makes a worker wait.
type Dataplane struct {
	ifaces   []Interface
	programs []*steer.Program
	attached []*steer.Attachment
	workers  []*Worker
	sockets  []*xsk.Socket
	changes  []*ring.SPSC[Change] // by worker, with replication on
	tables   atomic.Pointer[Tables]
	mu       sync.Mutex // serialises Publish and Close
	closed   bool
}

// Start loads and attaches the steering program on every interface, opens one
// AF_XDP socket per queue and starts a worker for each. On error everything
// already set up is torn down.
func Start(cfg Config) (_ *Dataplane, err error) {
	if len(cfg.Interfaces) == 0 || len(cfg.Interfaces) > MaxInterfaces {
		return nil, fmt.Errorf("need 1 to %d interfaces, have %d", MaxInterfaces, len(cfg.Interfaces))
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxBatch {
		return nil, fmt.Errorf("batch size %d outside 1..%d", cfg.BatchSize, MaxBatch)
	}
	d := &Dataplane{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	for _, name := range cfg.Interfaces {
		ifc, err := describe(name, cfg.Queues)
		if err != nil {
			return nil, err
		}
		d.ifaces = append(d.ifaces, ifc)
	}
	nWorkers := 0
	for _, ifc := range d.ifaces {
		nWorkers += len(ifc.Queues)
	}
	if cfg.CPUs != nil && len(cfg.CPUs) != nWorkers {
		return nil, fmt.Errorf("cpus lists %d CPUs for %d workers (one per interface queue)", len(cfg.CPUs), nWorkers)
	}
	perShard := (cfg.MaxAssociations + nWorkers - 1) / nWorkers
	persistPerShard := (cfg.MaxPersistenceRecords + nWorkers - 1) / nWorkers
	for i := range d.ifaces {
		ifc := &d.ifaces[i]
		maxQ := 0
		for _, q := range ifc.Queues {
			maxQ = max(maxQ, q+1)
		}
		prog, err := steer.Load(maxQ)
		if err != nil {
			return nil, fmt.Errorf("load steering program for %s: %w", ifc.Name, err)
		}
		d.programs = append(d.programs, prog)
		for _, q := range ifc.Queues {
			cpu := -1
			if cfg.CPUs != nil {
				cpu = cfg.CPUs[len(d.workers)]
			}
			sock, err := d.openWorker(cfg, ifc, i, q, cpu, perShard, persistPerShard)
			if err != nil {
				return nil, err
			}
			if err := prog.RegisterSocket(q, sock.FD()); err != nil {
				return nil, fmt.Errorf("register socket of %s queue %d: %w", ifc.Name, q, err)
			}
			if cfg.ShedOpenings {
				cell, err := prog.Overload(q)
				if err != nil {
					return nil, err
				}
				d.workers[len(d.workers)-1].setOverload(cell, sock.Config().RingSize)
			}
		}
		// Frames flooded to this port for another host's MAC go to the
		// kernel, which drops them (steer/ifmac.go).
		if err := prog.SetInterfaceMAC(ifc.Index, ifc.MAC); err != nil {
			return nil, err
		}
		// Attach last, so no VIP packet is steered to a queue without a socket.
		at, err := prog.Attach(ifc.Index, cfg.XDPMode)
		if err != nil {
			return nil, fmt.Errorf("attach steering program to %s: %w", ifc.Name, err)
		}
		d.attached = append(d.attached, at)
		ifc.XDPMode = at.Mode()
	}
	wireWorkers(d.ifaces, d.workers, int(cfg.RingSize)) // NAT: peers' shards, interface MACs, hand-off rings (handoff.go)
	for _, w := range d.workers {
		if err := w.start(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// openWorker opens the AF_XDP socket of one queue and makes its worker (not
// started yet); it returns the socket for XSKMAP registration.
func (d *Dataplane) openWorker(cfg Config, ifc *Interface, ifaceIdx, queue, cpu, perShard, persistPerShard int) (*xsk.Socket, error) {
	sock, err := xsk.Open(xsk.Config{
		Ifindex: ifc.Index, QueueID: queue, NumFrames: cfg.Frames, FrameSize: cfg.FrameSize,
		RingSize: cfg.RingSize, NeedWakeup: cfg.NeedWakeup, Mode: cfg.SocketMode,
		HugePages: cfg.HugePages, BusyPoll: cfg.busyPollOptions(),
	})
	if err != nil {
		return nil, fmt.Errorf("open AF_XDP socket on %s queue %d: %w", ifc.Name, queue, err)
	}
	d.sockets = append(d.sockets, sock)
	shard, err := assoc.NewShard(perShard + persistPerShard)
	if err != nil {
		return nil, err
	}
	engine := NewEngine(shard, ifaceIdx, ifc.MAC)
	engine.SetPersistLimit(persistPerShard)
	engine.SetFlowLimit(perShard)
	if cfg.Replicate {
		d.changes = append(d.changes, engine.enableChanges())
	}
	w := newWorker(sock, engine, &d.tables, workerConfig{
		iface: ifc.Name, queue: queue, cpu: cpu, busyPoll: cfg.BusyPoll, batch: cfg.BatchSize,
		slotSize: int(sock.Config().FrameSize), idleSpin: cfg.IdleSpin,
	})
	d.workers = append(d.workers, w)
	return sock, nil
}

// describe finds an interface's index, MAC and RX queues.
func describe(name string, queues []int) (Interface, error) {
	nif, err := net.InterfaceByName(name)
	if err != nil {
		return Interface{}, fmt.Errorf("interface %s: %w", name, err)
	}
	ifc := Interface{Name: name, Index: nif.Index}
	if len(nif.HardwareAddr) != 6 {
		return Interface{}, fmt.Errorf("interface %s has no Ethernet address", name)
	}
	copy(ifc.MAC[:], nif.HardwareAddr)
	rx, _ := filepath.Glob(filepath.Join("/sys/class/net", name, "queues", "rx-*"))
	n := max(len(rx), 1)
	if queues == nil {
		for q := 0; q < n; q++ {
			ifc.Queues = append(ifc.Queues, q)
		}
		return ifc, nil
	}
	for _, q := range queues {
		if q >= n {
			return Interface{}, fmt.Errorf("interface %s has %d RX queues; queue %d does not exist", name, n, q)
		}
	}
	ifc.Queues = append([]int(nil), queues...)
	return ifc, nil
}

// Interfaces describes the interfaces the data plane runs on; the index of an
// interface in this slice is the one Server.MAC is indexed by.
func (d *Dataplane) Interfaces() []Interface { return d.ifaces }

// Workers returns the workers, in start order.
func (d *Dataplane) Workers() []*Worker { return d.workers }

// NumWorkers returns the number of workers. The ring methods (PushControl,
// Inject, Punted) name a worker by its index in Workers, 0..NumWorkers()-1.
func (d *Dataplane) NumWorkers() int { return len(d.workers) }

// PushControl queues m for worker's shard; see Worker.PushControl. It
// returns false for a worker index out of range.
func (d *Dataplane) PushControl(worker int, m ControlMsg) bool {
	if worker < 0 || worker >= len(d.workers) {
		return false
	}
	return d.workers[worker].PushControl(m)
}

// Inject queues a copy of frame for worker to transmit; see Worker.Inject.
// It returns false for a worker index out of range.
func (d *Dataplane) Inject(worker int, frame []byte) bool {
	if worker < 0 || worker >= len(d.workers) {
		return false
	}
	return d.workers[worker].Inject(frame)
}

// DrainChanges moves up to len(out) of worker's oldest association changes
// (replicate.go) into out and returns how many; 0 without replication or
// for an index out of range. One goroutine per worker may call it.
func (d *Dataplane) DrainChanges(worker int, out []Change) int {
	if worker < 0 || worker >= len(d.changes) {
		return 0
	}
	return d.changes[worker].PopBatch(out)
}

// Punted returns the reading end of worker's punt ring, or nil for an index
// out of range; see Worker.Punted.
func (d *Dataplane) Punted(worker int) *PuntReader {
	if worker < 0 || worker >= len(d.workers) {
		return nil
	}
	return d.workers[worker].Punted()
}

// Owner returns the index of the worker a control message about k must go
// to: the worker whose shard holds k's record (found with the shards'
// lock-free readers), or, when none does, k's hash modulo the number of
// workers. A record must be in the shard of the worker that will look it up:
// for a flow record that is the worker of the queue the NIC steers the
// flow's packets to, which the hash cannot know, so a sender that learned the
// flow from a punted frame sends to the worker that punted it
// (PuntReader's worker) instead; the hash rule places records that workers
// find by reading each other's shards. It returns -1 when there are no
// workers.
func (d *Dataplane) Owner(k *assoc.Key) int {
	if len(d.workers) == 0 {
		return -1
	}
	h := k.Hash()
	busy := -1
	for i, w := range d.workers {
		switch _, r := w.engine.shard.Lookup(k, h); r {
		case assoc.Found:
			return i
		case assoc.Busy:
			if busy < 0 {
				busy = i // being written there: most likely k itself
			}
		}
	}
	if busy >= 0 {
		return busy
	}
	return int(h % uint64(len(d.workers)))
}

// Tables returns the generation last published.
func (d *Dataplane) Tables() *Tables { return d.tables.Load() }

// Counters returns the sum of every worker's published counters.
func (d *Dataplane) Counters() *Counters {
	total, one := new(Counters), new(Counters)
	for _, w := range d.workers {
		w.engine.Snapshot(one)
		total.Add(one)
	}
	return total
}

// SteeringCounts are the steering programs' counters as readers want them.
type SteeringCounts struct {
	Redirected uint64 // to the workers (VIP frames and NAT return traffic)
	Passed     uint64 // to the kernel
	// ShedOpenings counts openings to a VIP dropped before an overloaded
	// worker's RX ring (steer/overload.go).
	ShedOpenings uint64
}

// SteeringStats sums the steering programs' counters.
func (d *Dataplane) SteeringStats() (SteeringCounts, error) {
	var c SteeringCounts
	var err error
	for _, p := range d.programs {
		s, e := p.Stats()
		err = errors.Join(err, e)
		c.Redirected += s.Redirected + s.RedirectedReturn
		c.Passed += s.Passed()
		c.ShedOpenings += s.ShedOpenings
	}
	return c, err
}

// Close stops the workers, detaches the programs and closes the sockets.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, a := range d.attached {
		errs = append(errs, a.Close())
	}
	for _, w := range d.workers {
		if w.done != nil {
			w.halt()
		}
	}
	for _, s := range d.sockets {
		errs = append(errs, s.Close())
	}
	for _, p := range d.programs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
