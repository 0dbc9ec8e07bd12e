//go:build linux

package e2e

// File transfers (issue 9): a TCP control session plus UDP data flows from
// other source ports, to other VIP ports or VIPs, all of which must reach
// the server that holds the session. Clients are sockets the test makes in
// the client's namespace (persist_helpers_test.go), from extra client
// addresses; servers are "iplab serve", which greets TCP connections with
// its name and answers each datagram with it.

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// TestPersistenceOneVIP (the seed's Option 1 on one VIP): 10 clients each
// open a TCP control connection to 33001 and send UDP from 4 source ports
// to 33001-33004: every flow of a client reaches the server its control
// connection reached. 60 clients' control connections spread by weight
// (least load). The API lists one record per client with its 5 flows. A
// drained server keeps its clients; once a client's record expired (no
// traffic for the persistence timeout, shortened by a reload) the client
// moves.
func TestPersistenceOneVIP(t *testing.T) {
	weights := map[string]int{"s1": 1, "s2": 2, "s3": 3}
	sets := func(timeout string) string {
		return `
[[target_set]]
name = "hsao"
address = "192.0.2.10"
protocols = ["tcp", "udp"]
ports = ["33001-33004"]
method = "least_load"
delete_age = "1m"
persistence = "client"
persistence_timeout = "` + timeout + `"
balance = { enabled = false }
` + ftServers(false, weights, nil)
	}
	e := startFT(t, 3, []netip.Addr{lab.DefaultVIP4}, []spServer{{"s1", 1}, {"s2", 2}, {"s3", 3}}, sets("1m"))
	// 10 transfer clients, and 50 more that only connect, for the spread.
	all := clientAddrs("198.51.100.", 101, 60)
	clients := all[:10]
	e.addClientAddrs(all...)

	// Every client's control connection first: the method chooses.
	ctls := make([]*ctlConn, len(clients))
	perServer := map[string]int{}
	for i, c := range all {
		cc := e.control(c, 21000, e.vip, 33001)
		if i < len(clients) {
			ctls[i] = cc
		}
		perServer[cc.server]++
	}
	for i, c := range clients {
		for j := range 4 {
			f := e.udp(c, 21001+j, e.vip, 33001+j)
			for range 3 {
				if s := e.mustAsk(f); s != ctls[i].server {
					t.Errorf("%s answered by %s, want %s (its control connection's server)", f.name, s, ctls[i].server)
				}
			}
		}
		e.mustEcho(ctls[i])
	}
	checkShares(t, perServer, e.lab.Servers(), []int{1, 2, 3}, 8)

	p := e.persistence("?set=hsao")
	if len(p.Records) != len(all) {
		t.Fatalf("/v1/persistence?set=hsao lists %d records, want %d: %+v", len(p.Records), len(all), p.Records)
	}
	for _, r := range p.Records {
		i := slices.IndexFunc(clients, func(c netip.Addr) bool { return r.Client == c.String()+"/32" })
		if i < 0 {
			continue // a client that only connected
		}
		s := ctls[i].server
		if r.Group != "hsao" || r.Server != s || r.Address != e.host(s).IPv4.String() || r.Flows != 5 || r.Workers < 1 ||
			!slices.Equal(r.Sets, []string{"hsao"}) {
			t.Errorf("record %+v, want group hsao, server %s (%s), 5 flows", r, s, e.host(s).IPv4)
		}
	}
	// Workers publish their counters a few batches late: wait for them.
	e.waitFor(5*time.Second, "persistence counters", func() (bool, string) {
		c := e.persistence("").Counters
		return c.Made == 60 && c.Found == 40 && c.Full == 0 && c.OwnedPort == 0,
			fmt.Sprintf("counters %+v, want 60 records made, 40 found (4 data flows of each transfer client), none full, no owned port", c)
	})
	tb := findTable(t, e.ctlOK("persistence", "--set", "hsao").stdout,
		"GROUP", "CLIENT", "SERVER", "ADDRESS", "AGE", "EXPIRES-IN", "WORKERS", "FLOWS", "SETS")
	if row := tb.row(t, "CLIENT", clients[0].String()+"/32"); row["SERVER"] != ctls[0].server || row["FLOWS"] != "5" {
		t.Errorf("ipfront ctl persistence: row %v, want server %s and 5 flows", row, ctls[0].server)
	}
	ms := e.metrics()
	if v := metricValue(t, ms, "ipfront_persistence_records_made_total", nil); v != 60 {
		t.Errorf("ipfront_persistence_records_made_total = %v, want 60", v)
	}
	if v := metricValue(t, ms, "ipfront_persistence_records_found_total", nil); v != 40 {
		t.Errorf("ipfront_persistence_records_found_total = %v, want 40", v)
	}

	// The last client's server is drained: its new flows still go there
	// while its record lives.
	last := len(clients) - 1
	c, s0 := clients[last], ctls[last].server
	e.ctlOK("drain", "hsao", s0)
	e.mustEcho(ctls[last])
	if s := e.mustAsk(e.udp(c, 21005, e.vip, 33002)); s != s0 {
		t.Errorf("new data flow of %s while its server %s is drained: answered by %s, want %s", c, s0, s, s0)
	}
	// A persistence timeout of 1 s, and no traffic from the client: its
	// record expires...
	e.writeFile(ftConfig(sets("1s")))
	e.reload("ctl")
	e.waitFor(10*time.Second, "the record of "+c.String()+" expires", func() (bool, string) {
		p := e.persistence("?client=" + c.String())
		return len(p.Records) == 0, fmt.Sprintf("%+v", p.Records)
	})
	// ... and its next flows choose anew: not the drained server.
	moved := e.control(c, 21010, e.vip, 33001)
	if moved.server == s0 {
		t.Errorf("%s after its record expired reached the drained %s", moved.name, s0)
	}
	if s := e.mustAsk(e.udp(c, 21011, e.vip, 33003)); s != moved.server {
		t.Errorf("data flow of %s after it moved answered by %s, want %s", c, s, moved.server)
	}
	p = e.persistence("?client=" + c.String())
	if len(p.Records) != 1 || p.Records[0].Server != moved.server || p.Counters.Made != 61 {
		t.Errorf("/v1/persistence?client=%s = %+v, want one record on %s and 61 made", c, p, moved.server)
	}
	e.requireNoDrops("one VIP")
}

// TestPersistenceGroupTwoVIPs (Option 1 across two VIPs, IPv6): control on
// one VIP, data on another, one persistence group grouping clients by /112:
// every flow of every address of a /112 lands on one server, whichever set
// its first flow went to.
func TestPersistenceGroupTwoVIPs(t *testing.T) {
	vipCtl, vipData := netip.MustParseAddr("2001:db8:10::10"), netip.MustParseAddr("2001:db8:10::11")
	servers := map[string]int{"s1": 1, "s2": 1, "s3": 1}
	e := startFT(t, 3, []netip.Addr{vipCtl, vipData}, []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, `
[[target_set]]
name = "ctl"
address = "2001:db8:10::10"
protocols = ["tcp"]
ports = ["33001"]
method = "least_load"
balance = { enabled = false }
`+ftServers(true, servers, nil)+`
[[target_set]]
name = "data"
address = "2001:db8:10::11"
protocols = ["udp"]
ports = ["33001-33004"]
method = "least_load"
balance = { enabled = false }
health = { type = "tcp", port = 33001 }
`+ftServers(true, servers, nil)+`
[[persistence_group]]
name = "transfers"
target_sets = ["ctl", "data"]
timeout = "30s"
ipv6_prefix = 112
`)
	a := clientAddrs("2001:db8:100::a:", 1, 3)
	b := clientAddrs("2001:db8:100::b:", 1, 3)
	e.addClientAddrs(append(a, b...)...)

	// Prefix A starts with a control connection, prefix B with data.
	var got [2][]string // servers seen by each prefix's flows
	ca := e.control(a[0], 21000, vipCtl, 33001)
	got[0] = append(got[0], ca.server, e.mustAsk(e.udp(a[0], 21001, vipData, 33001)), e.mustAsk(e.udp(a[0], 21002, vipData, 33002)))
	got[0] = append(got[0], e.mustAsk(e.udp(a[1], 21001, vipData, 33003)), e.control(a[1], 21000, vipCtl, 33001).server)
	got[0] = append(got[0], e.control(a[2], 21000, vipCtl, 33001).server, e.mustAsk(e.udp(a[2], 21001, vipData, 33004)))
	got[1] = append(got[1], e.mustAsk(e.udp(b[0], 21001, vipData, 33001)), e.control(b[0], 21000, vipCtl, 33001).server)
	for _, c := range b[1:] {
		got[1] = append(got[1], e.control(c, 21000, vipCtl, 33001).server, e.mustAsk(e.udp(c, 21001, vipData, 33002)))
	}
	e.mustEcho(ca)
	for i, prefix := range []string{"2001:db8:100::a:0/112", "2001:db8:100::b:0/112"} {
		for _, s := range got[i] {
			if s != got[i][0] {
				t.Errorf("flows of %s reached %v, want one server", prefix, got[i])
				break
			}
		}
	}

	p := e.persistence("")
	if len(p.Records) != 2 {
		t.Fatalf("/v1/persistence lists %d records, want 2 (one per /112): %+v", len(p.Records), p.Records)
	}
	for i, prefix := range []string{"2001:db8:100::a:0/112", "2001:db8:100::b:0/112"} {
		r := p.Records[i]
		want := got[i][0]
		if r.Client != prefix || r.Group != "transfers" || !slices.Equal(r.Sets, []string{"ctl", "data"}) || r.Server != want ||
			r.Address != e.host(want).IPv6.String() || r.Flows != len(got[i]) {
			t.Errorf("record %d = %+v, want %s in group transfers (ctl, data) on %s with %d flows", i, r, prefix, want, len(got[i]))
		}
	}
	wantFound := uint64(len(got[0]) + len(got[1]) - 2)
	e.waitFor(5*time.Second, "persistence counters", func() (bool, string) {
		c := e.persistence("").Counters
		return c.Made == 2 && c.Found == wantFound, fmt.Sprintf("counters %+v, want 2 records made and every other flow found (%d)", c, wantFound)
	})
	e.requireNoDrops("two VIPs")
}

// TestOwnedPorts (the seed's Option 2): each server owns a UDP range; a
// datagram to a port of a range reaches its owner for every client, while
// the TCP control connections spread by the method.
func TestOwnedPorts(t *testing.T) {
	weights := map[string]int{"s1": 1, "s2": 1, "s3": 1}
	e := startFT(t, 3, []netip.Addr{lab.DefaultVIP4}, []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, `
[[target_set]]
name = "ctl"
address = "192.0.2.10"
protocols = ["tcp"]
ports = ["33001"]
method = "hash"
balance = { enabled = false }
`+ftServers(false, weights, nil)+`
[[target_set]]
name = "data"
address = "192.0.2.10"
protocols = ["udp"]
ports = ["33010-33039"]
health = { type = "tcp", port = 33001 }
`+ftServers(false, weights, map[string]string{"s1": `"33010-33019"`, "s2": `"33020-33029"`, "s3": `"33030-33039"`}))
	clients := clientAddrs("198.51.100.", 101, 10)
	e.addClientAddrs(clients...)

	perServer := map[string]int{}
	for _, c := range clients {
		perServer[e.control(c, 21000, e.vip, 33001).server]++
	}
	for role := range weights {
		if perServer[role] < 2 {
			t.Errorf("control connections by server %v: want at least 2 of the 10 on each of 3 equal servers", perServer)
			break
		}
	}
	for i, c := range clients {
		for j, owner := range []string{"s1", "s2", "s3"} {
			f := e.udp(c, 21001+j, e.vip, 33010+10*j+i)
			if s := e.mustAsk(f); s != owner {
				t.Errorf("%s answered by %s, want %s (the owner of the port)", f.name, s, owner)
			}
		}
	}
	p := e.persistence("")
	if len(p.Records) != 0 || p.Counters.OwnedPort != 30 {
		t.Errorf("/v1/persistence = %+v, want no records and 30 owned-port associations", p)
	}
	tb := findTable(t, e.ctlOK("servers", "data").stdout, "SET", "SERVER", "ADDRESS", "OWNED-PORTS")
	for j, role := range []string{"s1", "s2", "s3"} {
		if want := fmt.Sprintf("%d-%d", 33010+10*j, 33019+10*j); tb.row(t, "SERVER", role)["OWNED-PORTS"] != want {
			t.Errorf("ipfront ctl servers data: %s owns %v, want %s", role, tb.row(t, "SERVER", role), want)
		}
	}
	e.requireNoDrops("owned ports")
}

// TestAsperaMultiSession: three parallel sessions (SSH control plus FASP
// data each) from one client stay on one server with client persistence on
// 33001; with one owned port per node (33011-33013, TCP and UDP) the
// sessions run on three servers.
func TestAsperaMultiSession(t *testing.T) {
	weights := map[string]int{"s1": 1, "s2": 1, "s3": 1}
	e := startFT(t, 3, []netip.Addr{lab.DefaultVIP4}, []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, `
[[target_set]]
name = "aspera"
address = "192.0.2.10"
protocols = ["tcp", "udp"]
ports = ["33001"]
method = "least_load"
persistence = "client"
balance = { enabled = false }
`+ftServers(false, weights, nil)+`
[[target_set]]
name = "nodes"
address = "192.0.2.10"
protocols = ["tcp", "udp"]
ports = ["33011-33013"]
health = { type = "tcp", port = 33001 }
`+ftServers(false, weights, map[string]string{"s1": `"33011"`, "s2": `"33012"`, "s3": `"33013"`}))
	client := e.lab.Client().IPv4

	// session runs one session: its control connection, then 3 datagrams
	// from another source port to the same port; it returns every server
	// seen, the control's first.
	session := func(ctlPort, dataPort, port int) ([]string, error) {
		cc, err := e.dialControl(client, ctlPort, e.vip, port)
		if err != nil {
			return nil, err
		}
		seen := []string{cc.server}
		f, err := e.openUDP(client, dataPort, e.vip, port)
		if err != nil {
			return nil, err
		}
		for range 3 {
			s, err := f.ask()
			if err != nil {
				return nil, err
			}
			seen = append(seen, s)
		}
		return seen, cc.echo()
	}
	parallel := func(ports func(i int) (ctl, data, port int)) [][]string {
		out := make([][]string, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i], errs[i] = session(ports(i))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return out
	}

	persisted := parallel(func(i int) (int, int, int) { return 22000 + i, 22010 + i, 33001 })
	for i, seen := range persisted {
		for _, s := range seen {
			if s != persisted[0][0] {
				t.Errorf("with persistence, session %d reached %v, session 0 %v: want one server for all", i, seen, persisted[0])
			}
		}
	}
	p := e.persistence("?set=aspera")
	if len(p.Records) != 1 || p.Records[0].Client != client.String()+"/32" || p.Records[0].Server != persisted[0][0] || p.Records[0].Flows != 6 {
		t.Errorf("/v1/persistence?set=aspera = %+v, want one record of %s on %s with 6 flows", p.Records, client, persisted[0][0])
	}

	owned := parallel(func(i int) (int, int, int) { return 22020 + i, 22030 + i, 33011 + i })
	for i, seen := range owned {
		want := "s" + strconv.Itoa(i+1)
		for _, s := range seen {
			if s != want {
				t.Errorf("with owned ports, session %d (port %d) reached %v, want %s for all its flows", i, 33011+i, seen, want)
				break
			}
		}
	}
	e.requireNoDrops("aspera")
}

// TestKeepaliveControlSession (the seed's TCP idle timeout): with
// delete_age = "2s" a client keeps its TCP control connection quiet while
// its UDP data flows for 6 s, then uses it: with persistence it still
// reaches its server and echoes correctly, the persistence record (kept
// fresh by the data) deciding. Without persistence (the other set) the
// control connection's association expires just the same, and its next
// packet is balanced anew by the method, persistence deciding nothing.
func TestKeepaliveControlSession(t *testing.T) {
	weights := map[string]int{"s1": 1, "s2": 1, "s3": 1}
	e := startFT(t, 3, []netip.Addr{lab.DefaultVIP4}, []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, `
[[target_set]]
name = "persist"
address = "192.0.2.10"
protocols = ["tcp", "udp"]
ports = ["33001-33002"]
method = "least_load"
delete_age = "2s"
persistence = "client"
balance = { enabled = false }
`+ftServers(false, weights, nil)+`
[[target_set]]
name = "plain"
address = "192.0.2.10"
protocols = ["tcp", "udp"]
ports = ["33003-33004"]
method = "least_load"
delete_age = "2s"
balance = { enabled = false }
`+ftServers(false, weights, nil))
	a, b := netip.MustParseAddr("198.51.100.101"), netip.MustParseAddr("198.51.100.102")
	e.addClientAddrs(a, b)
	ctlA, ctlB := e.control(a, 21000, e.vip, 33001), e.control(b, 21000, e.vip, 33003)
	e.mustEcho(ctlA)
	e.mustEcho(ctlB)
	dataA, dataB := e.udp(a, 21001, e.vip, 33002), e.udp(b, 21001, e.vip, 33004)
	if s := e.mustAsk(dataA); s != ctlA.server {
		t.Fatalf("%s answered by %s, want %s (its control connection's)", dataA.name, s, ctlA.server)
	}
	e.mustAsk(dataB)
	// Four associations so far: both control connections, both data flows.
	before, pBefore := e.assocTotalsAtLeast(4), e.persistence("").Counters

	// 6 s of data, the control connections quiet: three times delete_age.
	start := time.Now()
	for time.Since(start) < 6*time.Second {
		if s := e.mustAsk(dataA); s != ctlA.server {
			t.Fatalf("%s answered by %s, want %s", dataA.name, s, ctlA.server)
		}
		e.mustAsk(dataB)
		time.Sleep(200 * time.Millisecond) // pacing: one datagram each per 200 ms
	}
	// Both control associations expired: older than delete_age (or swept).
	for _, c := range []*ctlConn{ctlA, ctlB} {
		if idle, found := e.flowIdle(c, 21000); found && idle <= 2 {
			t.Errorf("%s: its association is idle %d s after 6 s of silence, want it expired (> 2 s)", c.name, idle)
		}
	}
	// A's record lived on, refreshed by its data.
	if p := e.persistence("?client=" + a.String()); len(p.Records) != 1 || p.Records[0].Age > 1 || p.Records[0].Server != ctlA.server {
		t.Fatalf("/v1/persistence?client=%s = %+v, want one fresh record on %s", a, p.Records, ctlA.server)
	}

	if err := ctlA.echo(); err != nil {
		t.Errorf("control connection with persistence after 6 s quiet: %v", err)
	}
	errB := ctlB.echo()
	t.Logf("control connection without persistence after 6 s quiet: echo error %v (either way: its server was chosen anew)", errB)

	after, pAfter := e.assocTotalsAtLeast(before.New+2), e.persistence("").Counters
	if n := after.New - before.New; n != 2 {
		t.Errorf("%d associations made when the quiet control connections spoke, want 2: both had expired", n)
	}
	if n := pAfter.Found - pBefore.Found; n != 1 {
		t.Errorf("%d associations decided by a persistence record when the control connections spoke, want 1 (the persistent set's)", n)
	}
	if idle, found := e.flowIdle(ctlA, 21000); !found || idle > 1 {
		t.Errorf("%s: association found %v, idle %d s after it spoke; want it made again", ctlA.name, found, idle)
	}
	var assocs apiAssocs
	e.api("/v1/associations?client="+a.String()+"&limit=100", &assocs)
	for _, x := range assocs.Associations {
		if x.Port == 21000 && x.Server != ctlA.server {
			t.Errorf("control association of %s is on %s, want %s", a, x.Server, ctlA.server)
		}
	}
}

// flowIdle returns the idle time of the TCP association of client
// connection c (source port sport), if one is listed.
func (e *spEnv) flowIdle(c *ctlConn, sport int) (idle int, found bool) {
	e.t.Helper()
	src := netip.MustParseAddrPort(c.c.LocalAddr().String()).Addr().Unmap()
	var assocs apiAssocs
	e.api("/v1/associations?client="+src.String()+"&limit=100", &assocs)
	for _, x := range assocs.Associations {
		if x.Port == sport && x.Protocol == "tcp" {
			return x.Idle, true
		}
	}
	return 0, false
}
