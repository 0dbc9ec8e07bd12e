// Package ha replicates associations between mated ipfront instances
// (issue 11), the slow path's side of fastpath/replicate.go.
//
// Each instance streams the changes its workers report (made, proven, torn
// down, deleted, refreshed) to every mate over UDP in batches, named by set
// and server address (translate.go), authenticated with HMAC-SHA256 under a
// shared key, numbered per mate and epoch (wire.go). A receiver imports them
// through the owning worker's control ring (ControlImport/ControlUnimport),
// so a worker never waits. Loss shows as a hole in the numbers (window.go):
// the receiver asks for the missing messages (msgNack; the sender keeps the
// last retainSize it sent to each mate), and when they are gone, or a hole
// lasts giveUpAfter, it asks for the mate's whole table (a bulk resync, read
// from its shards with their lock-free Range). A starting instance pulls the
// whole table from its mates before it declares itself joined (Joined), which
// the daemon waits for before it is ready (and before BGP announces). When a
// worker's change ring overflowed (fastpath Counters.ChangesDropped), the
// sender cannot name what was lost and pushes a whole table to every mate.
//
// Forged messages (bad HMAC), replays (a number already seen, or an older
// epoch), stale ones (timestamp further than maxSkew from this clock) and
// truncated or malformed ones are dropped and counted per mate; datagrams
// from addresses that are not mates are counted apart.
package ha

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
)

// Protocol timing and limits.
const (
	flushEvery     = 5 * time.Millisecond   // the sender drains the change rings this often
	tickEvery      = 20 * time.Millisecond  // holes, retries and joining are looked at this often
	heartbeatEvery = 250 * time.Millisecond // a message to every mate at least this often
	nackDelay      = 20 * time.Millisecond  // a hole this old is asked for (reordering settles first)
	nackEvery      = 60 * time.Millisecond  // and asked for again this often
	giveUpAfter    = 2 * time.Second        // a hole this old is repaired by a resync
	requestRetry   = time.Second            // an unanswered resync request is sent again
	silentAfter    = 4 * heartbeatEvery     // a mate unheard for this long is reported silent
	maxSkew        = 30 * time.Second       // a message's time must be this close to ours
	retainSize     = 2 * windowSize         // messages kept per mate for retransmission
	// DefaultJoinTimeout is how long a starting instance waits for a mate
	// to answer its resync request before it goes ahead alone (the first
	// instance of a pair to start has nobody to pull from).
	DefaultJoinTimeout = 3 * time.Second
	// resyncBurst messages of a resync go out back to back, then the walk
	// pauses for a millisecond: about 16k messages, 400k records a second,
	// which a mate's socket buffer absorbs.
	resyncBurst = 16
	// pushTries bounds how often an import waits for room in a full
	// control ring (50us each) before it is dropped and counted.
	pushTries = 200
)

// Plane is what replication needs from the running data plane; the daemon
// adapts *fastpath.Dataplane, tests use a fake.
type Plane interface {
	// NumWorkers is the number of workers; the others name one by index.
	NumWorkers() int
	// DrainChanges moves worker's oldest changes into out (one caller).
	DrainChanges(worker int, out []fastpath.Change) int
	// PushControl queues a change of worker's shard; false if full.
	PushControl(worker int, m fastpath.ControlMsg) bool
	// Owner is the worker whose shard holds (or must hold) k.
	Owner(k *assoc.Key) int
	// Tables is the generation in force, nil before the first.
	Tables() *fastpath.Tables
	// Range calls fn for each live record of worker's shard.
	Range(worker int, fn func(assoc.Key, assoc.Value) bool)
	// ChangesDropped is the number of changes every worker's full change
	// ring refused so far.
	ChangesDropped() uint64
}

// Conn is the UDP socket the node talks on; *net.UDPConn implements it.
type Conn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// Config is a node's configuration.
type Config struct {
	Listen netip.AddrPort   // this instance's sync address
	Mates  []netip.AddrPort // the mates' sync addresses
	Key    []byte           // the shared secret, at least 16 bytes
	Log    zerolog.Logger
	// JoinTimeout: see DefaultJoinTimeout (zero means it).
	JoinTimeout time.Duration
	// Conn, if not nil, is used instead of a socket bound to Listen.
	Conn Conn
	// Now is the wall clock of message times; nil means time.Now.
	Now func() time.Time
	// AssocNow is the association clock; nil means assoc.Now.
	AssocNow func() uint32
}

// MinKeyLen is the shortest shared secret accepted.
const MinKeyLen = 16

// Node is one instance's end of the replication: a sender goroutine that
// drains the change rings, a receiver goroutine that imports, a ticker that
// repairs loss, and per mate a goroutine that serves its resync requests.
type Node struct {
	cfg    Config
	plane  Plane
	conn   Conn
	epoch  uint64
	start  time.Time
	mates  []*mate
	byAddr map[netip.AddrPort]*mate

	joined      atomic.Bool
	exportSkip  atomic.Uint64 // local changes a mate could not resolve (stale server, unreplicated kind)
	unknownPeer atomic.Uint64 // datagrams from addresses that are no mates

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// mate is one mated instance as this node knows it.
type mate struct {
	addr  netip.AddrPort
	serve chan uint64 // resync requests to serve (the latest id); 0: unsolicited

	txMu   sync.Mutex // guards the transmit side
	txSeal *sealer
	seq    uint64
	kept   [retainSize][]byte // sealed messages by seq % retainSize

	rxMu      sync.Mutex // guards the receive side
	rxSeal    *sealer
	epoch     uint64 // the mate's epoch, 0 before its first message
	win       window
	holeSince time.Time
	lastNack  time.Time
	pending   uint64 // id of this node's unanswered resync request, 0 none
	reqSent   time.Time
	endSeq    uint64 // the msgResyncEnd of the request being received; 0 none
	// begun is set when the msgResyncBegin of the pending request was
	// applied in order: only then did the window cover every message of
	// the resync, and its end may mark the table pulled.
	begun  bool
	pulled bool // a requested resync completed at least once
	recs   []record
	// done is the last number applied in order; held are the messages
	// that arrived behind a hole, applied once it is filled.
	done uint64
	held map[uint64]heldMsg

	lastRecv atomic.Int64 // Unix ns of the last accepted message; 0 never
	lagNS    atomic.Int64 // receive time minus send time of the last accepted message
	c        counters
}

// counters are one mate's, read by Stats at any time.
type counters struct {
	sentMsgs, sentRecs, recvMsgs, recvRecs, imported, unresolved, importDropped atomic.Uint64
	forged, replayed, stale, malformed                                          atomic.Uint64
	resyncsRequested, resyncsServed, resyncsCompleted, lost                     atomic.Uint64
	retransmits, nacksSent                                                      atomic.Uint64
}

// Start starts a node on p. It returns once the socket is bound and the
// node has asked every mate for its table.
func Start(cfg Config, p Plane) (*Node, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("ha key: %d bytes, want at least %d", len(cfg.Key), MinKeyLen)
	}
	if cfg.JoinTimeout == 0 {
		cfg.JoinTimeout = DefaultJoinTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AssocNow == nil {
		cfg.AssocNow = assoc.Now
	}
	conn := cfg.Conn
	if conn == nil {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
		if err != nil {
			return nil, fmt.Errorf("ha listen %s: %w", cfg.Listen, err)
		}
		// A resync arrives in bursts; a deep buffer keeps them whole.
		_ = c.SetReadBuffer(8 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		conn = c
	}
	n := &Node{cfg: cfg, plane: p, conn: conn, epoch: uint64(cfg.Now().UnixNano()), start: cfg.Now(),
		byAddr: map[netip.AddrPort]*mate{}, stop: make(chan struct{})}
	for _, a := range cfg.Mates {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		m := &mate{addr: a, serve: make(chan uint64, 1), txSeal: newSealer(cfg.Key), rxSeal: newSealer(cfg.Key)}
		n.mates = append(n.mates, m)
		n.byAddr[a] = m
	}
	if len(n.mates) == 0 {
		n.joined.Store(true)
	}
	now := cfg.Now()
	for _, m := range n.mates {
		m.rxMu.Lock()
		n.request(m, now)
		m.rxMu.Unlock()
	}
	n.wg.Add(2 + len(n.mates))
	go n.receive()
	go n.send()
	for _, m := range n.mates {
		go n.serveResyncs(m)
	}
	return n, nil
}

// Addr is the address the node listens on.
func (n *Node) Addr() net.Addr { return n.conn.LocalAddr() }

// Joined reports whether the node pulled a mate's table, or no mate
// answered within the join timeout.
func (n *Node) Joined() bool { return n.joined.Load() }

// Close stops the node's goroutines and closes its socket.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		close(n.stop)
		err = n.conn.Close()
		n.wg.Wait()
	})
	return err
}

// transmit seals a message for m, keeps it for retransmission and sends it.
func (n *Node) transmit(m *mate, typ uint8, aux uint64, count int, body []byte) {
	// count is the number of records in body, for the counters.
	m.txMu.Lock()
	m.seq++
	msg := m.txSeal.seal(header{typ: typ, epoch: n.epoch, seq: m.seq,
		time: n.cfg.Now().UnixNano(), aux: aux}, body)
	m.kept[m.seq%retainSize] = msg
	m.txMu.Unlock()
	m.c.sentMsgs.Add(1)
	m.c.sentRecs.Add(uint64(count))
	// A send error (no route yet, a full buffer) is a lost message: the
	// mate's window finds the hole.
	_, _ = n.conn.WriteToUDPAddrPort(msg, m.addr)
}

// retransmit sends the kept message seq again, if it is still kept.
func (n *Node) retransmit(m *mate, seq uint64) {
	m.txMu.Lock()
	var msg []byte
	if seq <= m.seq && m.seq-seq < retainSize {
		msg = m.kept[seq%retainSize]
	}
	m.txMu.Unlock()
	if msg != nil {
		m.c.retransmits.Add(1)
		_, _ = n.conn.WriteToUDPAddrPort(msg, m.addr)
	}
}

// request asks m for its whole table. rxMu held.
func (n *Node) request(m *mate, now time.Time) {
	if m.pending == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		m.pending = binary.BigEndian.Uint64(b[:]) | 1
		m.begun = false
		m.c.resyncsRequested.Add(1)
	}
	m.reqSent = now
	n.transmit(m, msgResyncReq, m.pending, 0, nil)
}

// send is the sender goroutine: it drains every worker's change ring,
// batches the changes every mate can resolve, and keeps the mates' windows
// and this node's joining moving.
func (n *Node) send() {
	defer n.wg.Done()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	var (
		tr       translator
		buf      = make([]fastpath.Change, 256)
		body     = make([]byte, 0, maxBody)
		count    int
		r        record
		lastTick = n.cfg.Now()
		lastBeat = lastTick
		dropped  = n.plane.ChangesDropped()
	)
	out := func() {
		if count > 0 {
			for _, m := range n.mates {
				n.transmit(m, msgChanges, 0, count, body)
			}
			body, count = body[:0], 0
		}
	}
	for {
		select {
		case <-n.stop:
			return
		case <-flush.C:
		}
		tr.refresh(n.plane.Tables())
		now := n.cfg.AssocNow()
		for w := range n.plane.NumWorkers() {
			for {
				k := n.plane.DrainChanges(w, buf)
				for i := range buf[:k] {
					c := &buf[i]
					op := opUpsert
					if c.Op == fastpath.ChangeDelete {
						op = opDelete
					}
					if tr.tables == nil || !tr.export(op, &c.Key, &c.Value, now, &r) {
						n.exportSkip.Add(1)
						continue
					}
					if len(body)+recordLen(&r) > maxBody {
						out()
					}
					body = appendRecord(body, &r)
					count++
				}
				if k < len(buf) {
					break
				}
			}
		}
		out()
		if d := n.plane.ChangesDropped(); d != dropped {
			// The rings lost changes nobody can name: push everything.
			dropped = d
			for _, m := range n.mates {
				m.queueResync(0)
			}
		}
		wall := n.cfg.Now()
		if wall.Sub(lastBeat) >= heartbeatEvery {
			lastBeat = wall
			for _, m := range n.mates {
				n.transmit(m, msgHeartbeat, 0, 0, nil)
			}
		}
		if wall.Sub(lastTick) >= tickEvery {
			lastTick = wall
			n.tick(wall)
		}
	}
}

// tick asks for missing messages, gives up old holes, repeats unanswered
// requests and decides whether the node has joined.
func (n *Node) tick(now time.Time) {
	pulled, pulling := false, false
	for _, m := range n.mates {
		m.rxMu.Lock()
		if m.win.hole() {
			switch {
			case now.Sub(m.holeSince) >= giveUpAfter:
				m.win.giveUp()
				m.pending, m.endSeq = 0, 0 // a pull that lost a message starts again (see handle)
				n.flushHeld(m)
				m.holeSince = time.Time{}
				m.c.lost.Add(1)
				n.request(m, now)
			case now.Sub(m.holeSince) >= nackDelay && now.Sub(m.lastNack) >= nackEvery:
				m.lastNack = now
				miss := m.win.missing(nil, maxNack)
				body := make([]byte, 0, 8*len(miss))
				for _, s := range miss {
					body = binary.BigEndian.AppendUint64(body, s)
				}
				m.c.nacksSent.Add(1)
				n.transmit(m, msgNack, 0, 0, body)
			}
		}
		if m.pending != 0 && now.Sub(m.reqSent) >= requestRetry {
			n.request(m, now)
		}
		pulled = pulled || m.pulled
		pulling = pulling || (m.endSeq != 0 || (m.pending != 0 && m.epoch != 0 && m.lastRecv.Load() != 0))
		m.rxMu.Unlock()
	}
	if n.joined.Load() {
		return
	}
	waited := now.Sub(n.start)
	if pulled || (waited >= n.cfg.JoinTimeout && !pulling) || waited >= 4*n.cfg.JoinTimeout {
		n.joined.Store(true)
		ev := n.cfg.Log.Info()
		if !pulled {
			ev = n.cfg.Log.Warn()
		}
		ev.Bool("pulled", pulled).Dur("after", waited).Msg("ha joined")
	}
}

// receive is the receiver goroutine.
func (n *Node) receive() {
	defer n.wg.Done()
	buf := make([]byte, 65536)
	for {
		k, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-n.stop:
				return
			default:
				continue
			}
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		m := n.byAddr[from]
		if m == nil {
			n.unknownPeer.Add(1)
			continue
		}
		n.handle(m, buf[:k])
	}
}

// handle checks and applies one datagram from m.
func (n *Node) handle(m *mate, msg []byte) {
	m.rxMu.Lock()
	defer m.rxMu.Unlock()
	h, body, err := m.rxSeal.open(msg)
	switch {
	case errors.Is(err, errForged):
		m.c.forged.Add(1)
		return
	case err != nil:
		m.c.malformed.Add(1)
		return
	}
	now := n.cfg.Now()
	if d := now.Sub(time.Unix(0, h.time)); d > maxSkew || d < -maxSkew {
		m.c.stale.Add(1)
		return
	}
	resync, jumped := false, false
	switch {
	case h.epoch < m.epoch:
		m.c.replayed.Add(1) // the mate's earlier life
		return
	case h.epoch > m.epoch:
		// The mate (re)started, or this node did: whatever came before
		// this message in its stream is not known here. A first message
		// numbered 1 has nothing before it; otherwise ask for the table,
		// unless a request is out already.
		m.epoch = h.epoch
		m.win.reset(h.seq + 1)
		m.holeSince, m.endSeq, m.begun = time.Time{}, 0, false
		resync, jumped = h.seq != 1 && m.pending == 0, true
	default:
		ok, lost := m.win.accept(h.seq)
		if !ok {
			m.c.replayed.Add(1)
			return
		}
		if lost {
			m.c.lost.Add(1)
			// A pull in progress may have lost a message too: start a
			// new one, so the old one's end cannot mark a partial table
			// pulled (a rejoining instance would announce without it).
			m.pending, m.endSeq = 0, 0
			resync, jumped = true, true
		}
	}
	if !m.win.hole() {
		m.holeSince = time.Time{}
	} else if m.holeSince.IsZero() {
		m.holeSince = now
	}
	m.c.recvMsgs.Add(1)
	m.lastRecv.Store(now.UnixNano())
	m.lagNS.Store(now.UnixNano() - h.time)

	switch {
	case h.typ == msgNack || h.typ == msgResyncReq:
		// Requests act at once, in any order.
		n.process(m, h, body)
	case jumped:
		// Everything before is given up: apply what was held, in order.
		n.flushHeld(m)
		n.process(m, h, body)
		m.done = h.seq
	case h.seq < m.win.next:
		// In order now: apply it and whatever it released.
		for s := m.done + 1; s < m.win.next; s++ {
			if s == h.seq {
				n.process(m, h, body)
			} else if hm, ok := m.held[s]; ok {
				delete(m.held, s)
				n.process(m, hm.h, hm.body)
			}
		}
		m.done = m.win.next - 1
	default:
		// Behind a hole: changes apply in the order they were made (a
		// delete must not overtake the upsert it undoes).
		if m.held == nil {
			m.held = map[uint64]heldMsg{}
		}
		m.held[h.seq] = heldMsg{h, append([]byte(nil), body...)}
	}
	if m.endSeq != 0 && m.done >= m.endSeq {
		m.endSeq = 0
		m.pulled = true
		m.c.resyncsCompleted.Add(1)
	}
	if resync {
		n.request(m, now)
	}
}

// heldMsg is a message that arrived behind a hole.
type heldMsg struct {
	h    header
	body []byte
}

// flushHeld applies every held message in order and forgets them, when the
// holes before them are given up. rxMu held.
func (n *Node) flushHeld(m *mate) {
	seqs := make([]uint64, 0, len(m.held))
	for s := range m.held {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, s := range seqs {
		n.process(m, m.held[s].h, m.held[s].body)
	}
	clear(m.held)
	m.done = m.win.next - 1
}

// process acts on one accepted message. rxMu held.
func (n *Node) process(m *mate, h header, body []byte) {
	switch h.typ {
	case msgChanges, msgResync:
		recs, err := decodeRecords(body, m.recs)
		m.recs = recs
		if err != nil {
			m.c.malformed.Add(1)
		}
		n.apply(m, recs)
	case msgResyncReq:
		m.queueResync(h.aux)
	case msgResyncBegin:
		if h.aux == m.pending && h.aux != 0 {
			m.begun = true
		}
	case msgResyncEnd:
		switch {
		case h.aux != m.pending || h.aux == 0:
		case m.begun:
			m.pending, m.endSeq = 0, h.seq
		default:
			// The resync began before the first message this node
			// took from the mate (it had just started, or the window
			// was reset), so its first messages may have been lost
			// unseen: the request stays pending and goes again at the
			// next tick.
			m.c.lost.Add(1)
			m.reqSent = time.Time{}
		}
	case msgNack:
		for i := 0; i+8 <= len(body); i += 8 {
			n.retransmit(m, binary.BigEndian.Uint64(body[i:]))
		}
	}
}

// apply imports recs through the owning workers' control rings. rxMu held.
func (n *Node) apply(m *mate, recs []record) {
	var tr translator // cheap: refreshed per message from the current tables
	tr.refresh(n.plane.Tables())
	now := n.cfg.AssocNow()
	var cm fastpath.ControlMsg
	m.c.recvRecs.Add(uint64(len(recs)))
	for i := range recs {
		if tr.tables == nil || !tr.importMsg(&recs[i], now, &cm) {
			m.c.unresolved.Add(1)
			continue
		}
		w := n.plane.Owner(&cm.Key)
		pushed := false
		for try := 0; try < pushTries; try++ {
			if pushed = n.plane.PushControl(w, cm); pushed {
				break
			}
			select {
			case <-n.stop:
				return
			case <-time.After(50 * time.Microsecond):
			}
		}
		if pushed {
			m.c.imported.Add(1)
		} else {
			m.c.importDropped.Add(1)
		}
	}
}

// queueResync asks m's resync goroutine for a resync with id, replacing
// one still queued (the requester waits for the latest id it sent).
func (m *mate) queueResync(id uint64) {
	for {
		select {
		case m.serve <- id:
			return
		default:
		}
		select {
		case <-m.serve:
		default:
		}
	}
}

// serveResyncs sends m this node's whole table whenever it asks (or the
// change rings lost something).
func (n *Node) serveResyncs(m *mate) {
	defer n.wg.Done()
	for {
		var id uint64
		select {
		case <-n.stop:
			return
		case id = <-m.serve:
		}
		n.resync(m, id)
	}
}

// resync sends m every flow and persistence record of every shard: this
// instance's own and those it imported (a mate rejoining after a failure
// gets back what it had made, and its mates' state too).
func (n *Node) resync(m *mate, id uint64) {
	var tr translator
	tr.refresh(n.plane.Tables())
	if tr.tables == nil {
		return
	}
	n.transmit(m, msgResyncBegin, id, 0, nil)
	now := n.cfg.AssocNow()
	body := make([]byte, 0, maxBody)
	count, burst := 0, 0
	var r record
	stopped := false
	out := func() {
		if count == 0 {
			return
		}
		n.transmit(m, msgResync, id, count, body)
		body, count = body[:0], 0
		if burst++; burst == resyncBurst {
			burst = 0
			select {
			case <-n.stop:
				stopped = true
			case <-time.After(time.Millisecond):
			}
		}
	}
	for w := range n.plane.NumWorkers() {
		n.plane.Range(w, func(k assoc.Key, v assoc.Value) bool {
			if !tr.export(opUpsert, &k, &v, now, &r) {
				return true
			}
			if len(body)+recordLen(&r) > maxBody {
				out()
			}
			body = appendRecord(body, &r)
			count++
			return !stopped
		})
	}
	out()
	if stopped {
		return
	}
	n.transmit(m, msgResyncEnd, id, 0, nil)
	m.c.resyncsServed.Add(1)
}
