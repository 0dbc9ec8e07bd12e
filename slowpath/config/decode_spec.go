package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// decodeSpec turns the generic decode of a document into a Spec, applying
// defaults and reporting unknown keys, missing keys and values that cannot
// be read. Checks of ranges and of how values fit together are Validate's.
func decodeSpec(r *reporter, doc map[string]any) *Spec {
	root := table{r: r, m: doc}
	root.checkKeys(rootSchema)
	s := &Spec{
		Dataplane: decodeDataplane(root.sub("dataplane")),
		Log:       decodeLog(root.sub("log")),
		API:       decodeAPI(root.sub("api")),
		BGP:       decodeBGP(root.sub("bgp")), // bgp.go
		HA:        decodeHA(root.sub("ha")),   // ha.go
	}
	setTables := root.tables("target_set")
	for _, t := range setTables {
		s.TargetSets = append(s.TargetSets, decodeTargetSet(t))
	}
	decodePersistence(root, s, setTables) // persist.go
	return s
}

func decodeDataplane(t table) Dataplane {
	t.checkKeys(dataplaneSchema)
	t.require("interfaces", `list the NICs that receive VIP traffic in [dataplane]: interfaces = ["eth1"]`)
	d := Dataplane{
		Queues:          decodeQueues(t),
		XDPMode:         XDPMode(t.str("xdp_mode", string(XDPAuto))),
		BusyPoll:        t.boolean("busy_poll", true),
		BatchSize:       t.integer("batch_size", defaultBatchSize),
		MaxAssociations: t.integer("max_associations", defaultMaxAssociations),
		RingSize:        t.integer("ring_size", defaultRingSize),
		FrameSize:       t.integer("frame_size", defaultFrameSize),
		Frames:          t.integer("frames", 0),
		NeedWakeup:      t.boolean("need_wakeup", true),
		ZeroCopy:        t.str("zero_copy", ZeroCopyAuto),
		IdleSpin:        t.duration("idle_spin", defaultIdleSpin),
		PreferBusyPoll:  t.boolean("prefer_busy_poll", true),
		HugePages:       t.str("huge_pages", HugePagesAuto),
		PartialQueues:   t.boolean("partial_queues", false),
		ShedOpenings:    t.boolean("shed_openings", true),
	}
	decodeHashSeed(t, &d) // hash.go
	d.VLANs = decodeVLANs(t)
	d.Interfaces, _ = t.strings("interfaces")
	if cpus, _ := t.ints("cpus"); len(cpus) > 0 {
		d.CPUs = cpus
	}
	d.MaxPersistenceRecords = t.integer("max_persistence_records", d.MaxAssociations/4)
	if d.Frames == 0 {
		// Fill and RX rings, TX and completion rings: two rings' worth each.
		d.Frames = 2 * d.RingSize * 2
	}
	return d
}

// decodeQueues reads queues = "all" (nil) or a list of queue ids.
func decodeQueues(t table) []int {
	v, path, ok := t.get("queues")
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		if v != "all" {
			t.r.errorf(path, `write queues = "all" or a list of queue ids such as [0, 1]`,
				`expected "all" or a list of queue ids, got %s`, quote(v))
		}
		return nil
	case []any:
		qs, _ := t.ints("queues")
		if qs == nil {
			qs = []int{} // queues = [] is not "all": Validate rejects it
		}
		return qs
	}
	t.r.wrongType(path, `"all" or a list of queue ids`, v, "")
	return nil
}

func decodeLog(t table) Log {
	t.checkKeys(logSchema)
	return Log{
		Level:  t.str("level", "info"),
		Format: t.str("format", "console"),
	}
}

func decodeAPI(t table) API {
	t.checkKeys(apiSchema)
	return API{
		Listen: t.str("listen", defaultListen),
		Token:  t.str("token", ""),
		PProf:  t.boolean("pprof", false),

		TLSCert: t.str("tls_cert", ""),
		TLSKey:  t.str("tls_key", ""),
	}
}

func decodeTargetSet(t table) TargetSet {
	t.checkKeys(targetSetSchema)
	t.require("name", `name the target set: name = "web"`)
	t.require("address", `set the VIP: address = "192.0.2.10"`)
	ts := TargetSet{
		Name:       t.str("name", ""),
		Protocols:  decodeProtocols(t),
		Ports:      decodePorts(t),
		Method:     t.str("method", MethodHash),
		Forwarding: t.str("forwarding", ForwardDSR),
		Helper:     t.str("helper", ""),
		DeleteAge:  t.duration("delete_age", defaultDeleteAge),
		TableSize:  t.integer("table_size", defaultTableSize),

		OnServerFailure: t.str("on_server_failure", FailureReselect),
		Balance:         decodeBalance(t.sub("balance")),
	}
	ts.SynAge = decodeSynAge(t, ts.DeleteAge) // syn_age.go
	decodeHelperKeys(t, &ts)
	decodeEncapKeys(t, &ts) // encap.go
	ts.Address, _ = t.addr("address")
	for _, st := range t.tables("server") {
		ts.Servers = append(ts.Servers, decodeServer(st))
	}
	_, checked := t.m["health"]
	ts.Health = decodeHealth(t.sub("health"), checked, ts.Ports, ts.Protocols)
	for _, pt := range t.tables("peer_group") {
		ts.PeerGroups = append(ts.PeerGroups, decodePeerGroup(pt))
	}
	decodeSignalling(t, &ts) // signalling.go
	return ts
}

// decodeHealth reads [target_set.health]; present tells whether the set has
// the table. The port defaults to the first port of the set's first range.
// A set without the table whose first range is "*" has no port to check and
// is not checked, so that the defaults alone always make a valid set; nor is
// a set without TCP, whose servers need not accept TCP at all (a TCP check
// would mark every server of a UDP-only set down).
func decodeHealth(t table, present bool, ports []PortRange, protos []Proto) Health {
	t.checkKeys(healthSchema)
	h := Health{
		Type:         t.str("type", HealthTCP),
		Path:         t.str("path", ""),
		ExpectStatus: t.integer("expect_status", 0),
		Interval:     t.duration("interval", defaultHealthInterval),
		Timeout:      t.duration("timeout", defaultHealthTimeout),
		Rise:         t.integer("rise", defaultRise),
		Fall:         t.integer("fall", defaultFall),
	}
	first := PortRange{}
	if len(ports) > 0 && validRange(ports[0]) {
		first = ports[0]
	}
	if !present && (first == allPorts || !slices.Contains(protos, ProtoTCP)) {
		h.Type = HealthNone
	}
	if first != allPorts {
		h.Port = first.First
	}
	if v, path, ok := t.get("port"); ok {
		h.Port = 0
		if n, isInt := t.toInt(path, v); isInt {
			if n < 1 || n > 65535 {
				t.r.errorf(path, "ports are 1..65535", "port %d is out of range", n)
			} else {
				h.Port = uint16(n)
			}
		}
	}
	// Path and status mean something for HTTP only; Validate refuses them
	// with the other types.
	if h.Type == HealthHTTP {
		if _, set := t.m["path"]; !set {
			h.Path = defaultHealthPath
		}
		if _, set := t.m["expect_status"]; !set {
			h.ExpectStatus = defaultExpectStatus
		}
	}
	return h
}

func decodePeerGroup(t table) PeerGroup {
	t.checkKeys(peerGroupSchema)
	t.require("name", `name the peer group: name = "pool-a"`)
	t.require("prefixes", `list the peers' source prefixes: prefixes = ["198.51.100.0/28"]`)
	g := PeerGroup{Name: t.str("name", "")}
	g.Prefixes, _ = t.prefixes("prefixes")
	return g
}

func decodeBalance(t table) Balance {
	t.checkKeys(balanceSchema)
	b := Balance{
		Enabled:   t.boolean("enabled", true),
		Threshold: t.float("threshold", defaultThreshold),
		Window:    t.duration("window", defaultWindow),
		Sustain:   t.duration("sustain", defaultSustain),
	}
	b.Clear = t.float("clear", b.Threshold/2)
	if _, set := t.m["clear"]; !set {
		// Half of a valid threshold is valid: a bad default only repeats
		// the threshold's own error.
		t.r.mute(join(t.path, "clear"))
	}
	return b
}

func decodeServer(t table) Server {
	t.checkKeys(serverSchema)
	t.require("address", `set the server's address: address = "10.0.0.11"`)
	s := Server{Weight: t.integer("weight", defaultWeight)}
	s.Address, _ = t.addr("address")
	s.Name = t.str("name", "")
	s.OwnedPorts = decodeOwnedPorts(t) // persist.go
	if _, named := t.m["name"]; !named {
		if s.Address.IsValid() {
			s.Name = s.Address.String()
		} else {
			t.r.mute(join(t.path, "name")) // the address error says it all
		}
	}
	return s
}

// protoNames maps configuration names to protocols.
var protoNames = map[string]Proto{"tcp": ProtoTCP, "udp": ProtoUDP, "sctp": ProtoSCTP}

// decodeProtocols reads protocols, ["tcp"] by default.
func decodeProtocols(t table) []Proto {
	names, present := t.strings("protocols")
	if !present {
		return []Proto{ProtoTCP}
	}
	path := join(t.path, "protocols")
	protos := make([]Proto, len(names))
	for i, n := range names {
		ep := elem(path, i)
		if t.r.muted(ep) {
			continue
		}
		p, ok := protoNames[n]
		if !ok {
			hint := `protocols are "tcp", "udp" and "sctp"`
			if s := suggest(n, []string{"tcp", "udp", "sctp"}); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			t.r.errorf(ep, hint, "unknown protocol %s", quote(n))
		}
		protos[i] = p
	}
	return protos
}

// decodePorts reads ports, ["*"] by default. Elements are "N", "N-M", "*"
// or a bare integer. Range checks are Validate's, except for numbers that do
// not fit a port at all.
func decodePorts(t table) []PortRange {
	elems, path, present := t.list("ports")
	if !present {
		return []PortRange{allPorts}
	}
	return t.portList(elems, path, 0, `a port string such as "80" or "8000-8099"`)
}

// portList decodes a list of ports and port ranges at path: strings as
// parsePortRange reads them, integers from lowest to 65535; example names
// what an element of another type should have been.
func (t table) portList(elems []any, path string, lowest int64, example string) []PortRange {
	out := make([]PortRange, len(elems))
	for i, e := range elems {
		ep := elem(path, i)
		switch e := e.(type) {
		case string:
			r, problem, hint := parsePortRange(e)
			if problem != "" {
				t.r.errorf(ep, hint, "%s", problem)
			}
			out[i] = r
		case int64:
			if e < lowest || e > 65535 {
				t.r.errorf(ep, "ports are 1..65535", "port %d is out of range", e)
				continue
			}
			out[i] = PortRange{First: uint16(e), Last: uint16(e)}
		default:
			t.r.wrongType(ep, example, e, "")
		}
	}
	return out
}

// parsePortRange parses "N", "N-M" or "*", returning what is wrong with it
// and how to fix it.
func parsePortRange(s string) (r PortRange, problem, hint string) {
	if strings.TrimSpace(s) == "*" {
		return allPorts, "", ""
	}
	first, last, isRange := strings.Cut(s, "-")
	a, problem, hint := parsePort(first)
	b := a
	if problem == "" && isRange {
		b, problem, hint = parsePort(last)
	}
	if problem != "" && isRange {
		problem = fmt.Sprintf("port range %s: %s", quote(s), problem)
	}
	if problem != "" {
		return PortRange{}, problem, hint
	}
	return PortRange{First: a, Last: b}, "", ""
}

// parsePort parses a decimal port number, allowing blanks around it.
func parsePort(s string) (port uint16, problem, hint string) {
	s = strings.TrimSpace(s)
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Sprintf("%s is not a port number", quote(s)), `write "80", "8000-8099" or "*"`
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Sprintf("port %s is out of range", clip(s)), "ports are 1..65535"
	}
	return uint16(n), "", ""
}
