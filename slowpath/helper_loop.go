package slowpath

// The application helpers' loop: the daemon's side of the punt, inject and
// control rings for target sets with helper = "ftp" (slowpath/helper/ftp
// parses; this file moves frames and records).
//
// Per punted frame (a control-connection segment with payload, as it
// arrived: untranslated; see fastpath/forward_nat.go's "Helpers" for the
// fast path's half of the contract):
//
//  1. Parse it, check its TCP checksum (a corrupt segment is dropped: the
//     helper recomputes checksums, which would otherwise make it valid),
//     and find its flow record (the client's address and port in the set),
//     which names the server.
//  2. Feed the connection's ftp.Conn; it returns the segments to send.
//  3. Install the expectations it returned: ControlInsert (ControlUpdate
//     when one with the same key is there) of an assoc.KindExpect record.
//  4. When the server's sequence offset changed (a 227 rewritten), write it
//     into the flow record's aux (ControlUpdate).
//  5. Inject the segments, with sequence and acknowledgement numbers (and
//     SACK edges) already adjusted.
//
// Steps 3 to 5 all go to one worker, the flow record's owner (which the
// frame need not have come from: replies may arrive on another interface's
// worker). A worker applies its control messages before its injected frames
// in each loop iteration, so the expectation exists before the peer can see
// the segment announcing it, and the new offset is in force before any
// answer to the rewritten segment is translated there. Expectations are
// records with no flow of their own, which every worker looks for in every
// shard, so the owner of the control connection's record may hold them as
// well as the shard their hash names; there, nothing can overtake them.
//
// One goroutine does all of it, so connection state needs no lock; one
// small goroutine per worker only waits on that worker's punt ring (the
// ring's Wait: an eventcount, no spinning) and hands the ring over, so
// nothing ever reads a ring from two goroutines at once.

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/ring"
	"github.com/ipfront/ipfront/slowpath/helper/ftp"
)

// Helper loop limits.
const (
	// helperDrainBudget is how many punted frames the loop takes from one
	// ring before it looks at the others and its ticker.
	helperDrainBudget = 256
	// maxHelperConns bounds the control connections followed at once
	// (each holds at most two lines and a few rewrites). Beyond it new
	// connections pass unparsed, counted.
	maxHelperConns = 1 << 16
	// minConnIdle is the least idle time after which a control
	// connection's state is forgotten, whatever the set's delete age.
	minConnIdle = time.Minute
	// ftpDataPort is the port an active-mode server connects from
	// (RFC 959's L-1; vsftpd with connect_from_port_20=YES).
	ftpDataPort = 20
	// helperLogsPerSecond bounds the helper's log lines: a client sending
	// bounce attempts in a loop must not flood the log.
	helperLogsPerSecond = 20
)

// HelperPlane is what the application helpers need from a running data
// plane: every worker's punt ring (read), inject and control rings
// (written), and every shard's lock-free reader. The data plane FastPlane
// adapts implements it; the daemon runs the helper loop only on a plane that
// does.
type HelperPlane interface {
	// NumWorkers is the number of workers; rings are named by index.
	NumWorkers() int
	// Punted returns worker's punt ring, or nil.
	Punted(worker int) PuntSource
	// Inject queues a copy of frame for worker to translate and send.
	Inject(worker int, frame []byte) bool
	// PushControl queues a change of worker's shard.
	PushControl(worker int, m fastpath.ControlMsg) bool
	// Owner is the worker whose shard holds (or must hold) k.
	Owner(k *assoc.Key) int
	// Lookup finds k in any worker's shard.
	Lookup(k *assoc.Key) (assoc.Value, bool)
	// Tables is the generation in force, nil before the first.
	Tables() *fastpath.Tables
}

// PuntSource is the reading end of a worker's punt ring;
// *fastpath.PuntReader implements it.
type PuntSource interface {
	Peek() (frame []byte, m ring.Meta, ok bool)
	Release()
	Wait(done <-chan struct{}) bool
}

var _ HelperPlane = dataplanePlane{}

func (p dataplanePlane) NumWorkers() int { return p.dp.NumWorkers() }

func (p dataplanePlane) Punted(w int) PuntSource {
	if r := p.dp.Punted(w); r != nil {
		return r
	}
	return nil
}

func (p dataplanePlane) Inject(w int, frame []byte) bool { return p.dp.Inject(w, frame) }

func (p dataplanePlane) PushControl(w int, m fastpath.ControlMsg) bool { return p.dp.PushControl(w, m) }

func (p dataplanePlane) Owner(k *assoc.Key) int { return p.dp.Owner(k) }

// Lookup reads every shard with its bounded reader; a record being
// rewritten at that moment (Busy) is looked at once more.
func (p dataplanePlane) Lookup(k *assoc.Key) (assoc.Value, bool) {
	h := k.Hash()
	for _, w := range p.dp.Workers() {
		s := w.Engine().Shard()
		for try := 0; try < 2; try++ {
			v, r := s.Lookup(k, h)
			if r == assoc.Found {
				return v, true
			}
			if r != assoc.Busy {
				break
			}
		}
	}
	return assoc.Value{}, false
}

// HelperStats counts what the FTP helper did, for /metrics and
// /v1/expectations. Safe for concurrent use; the zero value is ready.
type HelperStats struct {
	// commands counts accepted lines by verb (ftpVerbs order).
	commands [len(ftpVerbs)]atomic.Uint64
	// notes counts the ftp package's notes by kind (rewrites, refusals,
	// stream events).
	notes [ftp.NumNotes]atomic.Uint64
	// installed counts expectations sent to a worker; expired those whose
	// timeout passed.
	installed, expired atomic.Uint64
	// Frames: taken off punt rings, handed back, dropped for a bad TCP
	// checksum; handed back unparsed because no flow record names their
	// server, or because maxHelperConns connections are followed.
	punted, injected, badChecksum, noFlow, untracked atomic.Uint64
	// Refusals of the rings (the frame or message is lost; TCP
	// retransmits, the helper sends the offset again with the next
	// segment).
	injectOverflow, controlOverflow atomic.Uint64
	// Gauges: control connections followed, expectations waiting.
	conns, expects atomic.Int64
}

// ftpVerbs are the lines the helper acts on, as counted.
var ftpVerbs = [...]string{"PORT", "EPRT", "227", "229"}

func (s *HelperStats) countCommand(verb string) {
	for i, v := range ftpVerbs {
		if v == verb {
			s.commands[i].Add(1)
		}
	}
}

// HelperStats returns the FTP helper's counters.
func (d *Daemon) HelperStats() *HelperStats { return &d.helperStats }

// helperLoop is the helpers' goroutine state. Everything but stats belongs
// to the goroutine running run.
type helperLoop struct {
	log     zerolog.Logger
	hp      HelperPlane
	clock   Clock
	stats   *HelperStats
	conns   map[connKey]*ctlConn
	expects map[assoc.Key]time.Time // installed expectations by key: their deadline
	logs    logLimiter
	flow    packet.Flow
	buf     []byte
}

// connKey names a control connection: set, client address and port.
type connKey struct {
	set    uint16
	client [16]byte
	port   uint16
}

// ctlConn is one followed control connection.
type ctlConn struct {
	ftp       *ftp.Conn
	slot      uint8  // the server its flow record names
	gen       uint32 // and that server's generation
	published uint32 // the server offset last written into the flow record
	seen      time.Time
	idle      time.Duration // forgotten after this long without a segment
}

func newHelperLoop(log zerolog.Logger, hp HelperPlane, clock Clock, stats *HelperStats) *helperLoop {
	return &helperLoop{log: log.With().Str("helper", "ftp").Logger(), hp: hp, clock: clock, stats: stats,
		conns: map[connKey]*ctlConn{}, expects: map[assoc.Key]time.Time{}}
}

// run serves every worker's punt ring until ctx is cancelled.
func (h *helperLoop) run(ctx context.Context) {
	n := h.hp.NumWorkers()
	ready := make(chan int, n)
	resume := make([]chan struct{}, n)
	rings := make([]PuntSource, n)
	for w := range n {
		rings[w] = h.hp.Punted(w)
		resume[w] = make(chan struct{}, 1)
		if rings[w] == nil {
			continue
		}
		// The waiter owns ring w only between handing it over (ready)
		// and getting it back (resume): the two goroutines never touch
		// it at once, and the channels order their accesses.
		go func() {
			for rings[w].Wait(ctx.Done()) {
				select {
				case ready <- w:
				case <-ctx.Done():
					return
				}
				select {
				case <-resume[w]:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	tick := h.clock.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-ready:
			h.drain(w, rings[w])
			resume[w] <- struct{}{}
		case now := <-tick.C():
			h.expire(now)
		}
	}
}

// drain handles up to helperDrainBudget frames of worker w's punt ring.
func (h *helperLoop) drain(w int, r PuntSource) {
	now := h.clock.Now()
	for range helperDrainBudget {
		frame, m, ok := r.Peek()
		if !ok {
			return
		}
		h.handle(w, frame, m, now)
		r.Release()
	}
}

// handle runs one punted frame of worker w through the helper.
func (h *helperLoop) handle(w int, frame []byte, m ring.Meta, now time.Time) {
	h.stats.punted.Add(1)
	var ts *fastpath.TargetSet
	if t := h.hp.Tables(); t != nil && m.Set != ring.NoSet {
		ts = t.Set(m.Set)
	}
	f := &h.flow
	if packet.Parse(frame, f) != packet.OK || f.Proto != packet.ProtoTCP || f.ICMPError || ts == nil ||
		ts.Helper != fastpath.HelperFTP {
		// Not a helper's segment (the set lost its helper in a reload,
		// say): the worker forwards it as it would have.
		h.inject(w, frame)
		return
	}
	if !tcpChecksumOK(frame, f) {
		h.stats.badChecksum.Add(1)
		return
	}
	dir, client, cport := ftp.FromServer, f.Dst, f.DstPort
	if f.Dst == ts.VIP {
		dir, client, cport = ftp.FromClient, f.Src, f.SrcPort
	}
	key := assoc.Key{Addr: client, Port: cport, Proto: packet.ProtoTCP, Set: ts.ID}
	v, found := h.hp.Lookup(&key)
	srv := &ts.Servers[v.Server&(fastpath.MaxServers-1)]
	if !found || !srv.Present || srv.Gen != v.Gen {
		h.stats.noFlow.Add(1)
		h.inject(w, frame)
		return
	}
	ck := connKey{set: ts.ID, client: client, port: cport}
	c := h.conns[ck]
	if c == nil || c.slot != v.Server || c.gen != v.Gen {
		if c == nil && len(h.conns) >= maxHelperConns {
			h.stats.untracked.Add(1)
			h.inject(w, frame)
			return
		}
		c = &ctlConn{ftp: ftp.NewConn(netip.AddrFrom16(client), netip.AddrFrom16(ts.VIP), ftp.Options{}),
			slot: v.Server, gen: v.Gen, published: v.Tag,
			idle: max(time.Duration(ts.DeleteAge)*time.Second, minConnIdle)}
		h.conns[ck] = c
		h.stats.conns.Store(int64(len(h.conns)))
	}
	c.seen = now

	tcp := frame[f.L4Off:]
	doff := int(tcp[12]>>4) * 4
	seg := ftp.Segment{Seq: binary.BigEndian.Uint32(tcp[4:]), Ack: binary.BigEndian.Uint32(tcp[8:]), Flags: tcp[13],
		Payload: frame[int(f.L4Off)+doff : int(f.L3Off)+int(f.Len)]}
	res := c.ftp.Process(dir, &seg)
	h.note(ts, &key, dir, res.Notes)

	target := h.hp.Owner(&key)
	if target < 0 {
		target = w
	}
	for _, e := range res.Expect {
		h.expect(ts, c, e, target, now)
	}
	if off := c.ftp.Offset(ftp.FromServer); off != c.published {
		v.Tag, v.LastSeen = off, assoc.Now()
		if h.hp.PushControl(target, fastpath.ControlMsg{Op: fastpath.ControlUpdate, Key: key, Value: v}) {
			c.published = off
		} else {
			h.stats.controlOverflow.Add(1)
			h.logf(zerolog.WarnLevel, "control ring full: sequence offset not recorded; sent again with the next segment", ts, &key)
		}
	}
	ack := seg.Ack
	if seg.Flags&ftp.FlagACK != 0 {
		ack = c.ftp.MapAck(dir, seg.Ack)
	}
	for i := range res.Segments {
		h.buf = segmentFrame(h.buf, frame, f, &res.Segments[i], ack, func(e uint32) uint32 { return c.ftp.MapAck(dir, e) })
		h.inject(target, h.buf)
	}
}

// inject hands frame to worker w, counting a refusal.
func (h *helperLoop) inject(w int, frame []byte) {
	if h.hp.Inject(w, frame) {
		h.stats.injected.Add(1)
		return
	}
	h.stats.injectOverflow.Add(1)
}

// expect installs expectation e of control connection c. A new one goes to
// worker w, the one the announcing segment is injected into: a worker
// applies its control messages before its injected frames, so the
// expectation is in place before the peer can see the announcement (the
// fast path reads expectations in every worker's shard). A renewed one goes
// where the record is.
func (h *helperLoop) expect(ts *fastpath.TargetSet, c *ctlConn, e ftp.Expectation, w int, now time.Time) {
	k := assoc.Key{Addr: e.Client.As16(), Port: e.Port, Proto: packet.ProtoTCP, Set: ts.ID, Kind: assoc.KindExpect}
	v := assoc.Value{Server: c.slot, Gen: c.gen, LastSeen: assoc.Now(), NAT: true}
	if e.Mode == ftp.Active {
		v.Flags, v.Tag = fastpath.ExpectActive, ftpDataPort
	}
	op := fastpath.ControlInsert
	if _, found := h.hp.Lookup(&k); found {
		op = fastpath.ControlUpdate // the same data port announced again: renew it
		w = h.hp.Owner(&k)
	}
	if w < 0 || !h.hp.PushControl(w, fastpath.ControlMsg{Op: op, Key: k, Value: v}) {
		h.stats.controlOverflow.Add(1)
		h.logf(zerolog.WarnLevel, "control ring full: expectation not installed", ts, &k)
		return
	}
	h.stats.installed.Add(1)
	timeout := time.Duration(ts.ExpectTimeout) * time.Second
	if ts.ExpectTimeout == 0 {
		timeout = fastpath.DefaultExpectTimeout * time.Second
	}
	h.expects[k] = now.Add(timeout)
	h.stats.expects.Store(int64(len(h.expects)))
	if h.log.GetLevel() <= zerolog.DebugLevel {
		h.log.Debug().Str("set", ts.Name).Str("mode", e.Mode.String()).Str("client", e.Client.String()).
			Uint16("port", e.Port).Str("server", ts.Servers[c.slot].Name).Msg("expectation installed")
	}
}

// note counts res's notes and logs the refusals.
func (h *helperLoop) note(ts *fastpath.TargetSet, k *assoc.Key, dir ftp.Dir, notes []ftp.Note) {
	for _, n := range notes {
		h.stats.notes[n.Kind].Add(1)
		var lvl zerolog.Level
		var msg string
		switch n.Kind {
		case ftp.NoteCommand:
			h.stats.countCommand(n.Verb)
			continue
		case ftp.NoteBounce:
			lvl, msg = zerolog.WarnLevel, "FTP bounce refused: the command names an address other than the client's"
		case ftp.NoteLowPort:
			lvl, msg = zerolog.WarnLevel, "data port below 1024 refused"
		case ftp.NoteMalformed, ftp.NoteOverlong, ftp.NoteFamily:
			lvl, msg = zerolog.InfoLevel, "unusable "+n.Verb+" line refused ("+n.Kind.String()+")"
		case ftp.NoteStalled:
			lvl, msg = zerolog.InfoLevel, "incomplete "+n.Verb+" line released unparsed: its rest did not come"
		default: // rewrites, gaps, old retransmissions, resyncs: counted only
			continue
		}
		if !h.logs.allow(h.clock.Now()) {
			continue
		}
		ev := h.log.WithLevel(lvl).Str("set", ts.Name).Str("client", netip.AddrFrom16(k.Addr).Unmap().String()).
			Uint16("client_port", k.Port).Str("from", dir.String()).Str("verb", n.Verb)
		if n.Addr.IsValid() {
			ev = ev.Str("named_address", n.Addr.String())
		}
		if n.Port != 0 {
			ev = ev.Uint16("named_port", n.Port)
		}
		ev.Msg(msg)
	}
}

// logf logs a ring refusal, rate-limited.
func (h *helperLoop) logf(lvl zerolog.Level, msg string, ts *fastpath.TargetSet, k *assoc.Key) {
	if h.logs.allow(h.clock.Now()) {
		h.log.WithLevel(lvl).Str("set", ts.Name).Str("client", netip.AddrFrom16(k.Addr).Unmap().String()).
			Uint16("port", k.Port).Msg(msg)
	}
}

// expire counts the expectations whose timeout passed (the workers' sweeps
// remove them; lookups ignore them from then on) and forgets control
// connections idle for longer than their set's delete age.
func (h *helperLoop) expire(now time.Time) {
	for k, deadline := range h.expects {
		if now.After(deadline) {
			delete(h.expects, k)
			h.stats.expired.Add(1)
		}
	}
	for k, c := range h.conns {
		if now.Sub(c.seen) > c.idle {
			delete(h.conns, k)
		}
	}
	h.stats.expects.Store(int64(len(h.expects)))
	h.stats.conns.Store(int64(len(h.conns)))
	if n := h.logs.flush(now); n > 0 {
		h.log.Warn().Int("suppressed", n).Msg("helper log lines suppressed in the last second")
	}
}

// logLimiter allows helperLogsPerSecond lines per second and counts the
// rest.
type logLimiter struct {
	second     time.Time
	n, dropped int
}

func (l *logLimiter) allow(now time.Time) bool {
	if s := now.Truncate(time.Second); !s.Equal(l.second) {
		l.second, l.n = s, 0
	}
	if l.n < helperLogsPerSecond {
		l.n++
		return true
	}
	l.dropped++
	return false
}

// flush returns and resets the count of suppressed lines.
func (l *logLimiter) flush(time.Time) int {
	n := l.dropped
	l.dropped = 0
	return n
}

// tcpChecksumOK verifies the TCP checksum of frame's segment.
func tcpChecksumOK(frame []byte, f *packet.Flow) bool {
	l3 := frame[f.L3Off:]
	seg := frame[f.L4Off : int(f.L3Off)+int(f.Len)]
	var sum uint32
	if f.Family == 4 {
		sum = packet.PseudoHeaderSum4([4]byte(l3[12:16]), [4]byte(l3[16:20]), packet.ProtoTCP, uint16(len(seg)))
	} else {
		sum = packet.PseudoHeaderSum6([16]byte(l3[8:24]), [16]byte(l3[24:40]), packet.ProtoTCP, uint32(len(seg)))
	}
	return packet.Checksum(seg, sum) == 0xffff
}

// segmentFrame builds into dst the frame of out: the punted frame's
// Ethernet, IP and TCP headers (options included) with out's sequence
// number, flags and payload, acknowledgement ack, SACK edges passed through
// mapEdge, and the IP length and checksums recomputed.
func segmentFrame(dst, frame []byte, f *packet.Flow, out *ftp.Out, ack uint32, mapEdge func(uint32) uint32) []byte {
	l4 := int(f.L4Off)
	doff := int(frame[l4+12]>>4) * 4
	b := append(dst[:0], frame[:l4+doff]...)
	b = append(b, out.Payload...)
	tcp := b[l4:]
	binary.BigEndian.PutUint32(tcp[4:], out.Seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[13] = out.Flags
	if out.Flags&ftp.FlagACK != 0 {
		mapSACK(tcp[packet.TCPMinHeaderLen:doff], mapEdge)
	}
	l3 := b[f.L3Off:]
	segLen := len(b) - l4
	var sum uint32
	if f.Family == 4 {
		binary.BigEndian.PutUint16(l3[2:], uint16(len(l3)))
		hl := int(l3[0]&0xf) * 4
		l3[10], l3[11] = 0, 0
		binary.BigEndian.PutUint16(l3[10:], ^packet.Checksum(l3[:hl], 0))
		sum = packet.PseudoHeaderSum4([4]byte(l3[12:16]), [4]byte(l3[16:20]), packet.ProtoTCP, uint16(segLen))
	} else {
		binary.BigEndian.PutUint16(l3[4:], uint16(len(l3)-packet.IPv6HeaderLen))
		sum = packet.PseudoHeaderSum6([16]byte(l3[8:24]), [16]byte(l3[24:40]), packet.ProtoTCP, uint32(segLen))
	}
	tcp[16], tcp[17] = 0, 0
	binary.BigEndian.PutUint16(tcp[16:], ^packet.Checksum(tcp, sum))
	return b
}

// mapSACK rewrites the edges of the SACK blocks in TCP options opts.
func mapSACK(opts []byte, mapEdge func(uint32) uint32) {
	for j := 0; j < len(opts); {
		switch opts[j] {
		case 0: // end of options
			return
		case 1: // no-op
			j++
			continue
		}
		if j+1 >= len(opts) || opts[j+1] < 2 || j+int(opts[j+1]) > len(opts) {
			return
		}
		if l := int(opts[j+1]); opts[j] == 5 { // SACK
			for e := j + 2; e+4 <= j+l; e += 4 {
				binary.BigEndian.PutUint32(opts[e:], mapEdge(binary.BigEndian.Uint32(opts[e:])))
			}
		}
		j += int(opts[j+1])
	}
}

// startHelpers runs the helper loop on hp until ctx is cancelled or the
// returned function is called, which waits for it to stop.
func (d *Daemon) startHelpers(ctx context.Context, hp HelperPlane) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	h := newHelperLoop(d.log, hp, d.opts.Clock, &d.helperStats)
	go func() {
		defer close(done)
		h.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
