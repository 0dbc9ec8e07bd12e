package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ipfront/ipfront/slowpath/config"
)

// connectRetry is how often, in seconds, the speaker retries a neighbour
// that is not up: a router that restarted learns the VIPs again within
// seconds rather than GoBGP's default two minutes.
const connectRetry = 5

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// Speaker is the embedded BGP speaker (GoBGP). Each neighbour's session
// carries the VIPs of its own address family (IPv4 VIPs over an IPv4
// session, IPv6 over IPv6) with the session's local address as the next
// hop: ipfront's address on the segment it shares with the router.
type Speaker struct {
	cfg config.BGP
	srv *server.BgpServer

	mu     sync.Mutex              // serialises Announce and Close; guards paths and closed
	paths  map[netip.Prefix][]byte // announced prefix -> GoBGP path UUID
	closed bool
}

// NewSpeaker starts a speaker that peers with cfg's neighbours; it
// announces nothing until Announce.
func NewSpeaker(cfg config.BGP, log zerolog.Logger) (*Speaker, error) {
	srv := server.NewBgpServer(server.LoggerOption(&logAdapter{log: log.With().Str("component", "bgp").Logger()}))
	go srv.Serve()
	s := &Speaker{cfg: cfg, srv: srv, paths: map[netip.Prefix][]byte{}}
	port := int32(cfg.ListenPort)
	if port == 0 {
		port = -1 // GoBGP: negative is "do not listen", 0 would be 179
	}
	ctx := context.Background()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: port,
	}})
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start bgp speaker: %w", err)
	}
	for _, n := range cfg.Neighbors {
		fam := familyV4
		if n.Address.Is6() && !n.Address.Is4In6() {
			fam = familyV6
		}
		hold := uint64(n.HoldTime.Seconds())
		p := &api.Peer{
			Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN, AuthPassword: n.Password},
			Timers: &api.Timers{Config: &api.TimersConfig{
				HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: connectRetry,
			}},
			AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
		}
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			s.stop()
			return nil, fmt.Errorf("bgp neighbor %s: %w", n.Address, err)
		}
	}
	return s, nil
}

// Announce implements Announcer.
func (s *Speaker) Announce(prefixes []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bgp speaker closed")
	}
	have := make(map[netip.Prefix]bool, len(s.paths))
	for p := range s.paths {
		have[p] = true
	}
	add, del := diff(have, prefixes)
	var errs []error
	ctx := context.Background()
	// Withdrawals first: a VIP that lost its servers leaves the routers
	// before anything else changes.
	for _, p := range del {
		if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{Family: family(p), Uuid: s.paths[p]}); err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", p, err))
			continue
		}
		delete(s.paths, p)
	}
	for _, p := range add {
		path, err := s.path(p)
		if err == nil {
			var r *api.AddPathResponse
			if r, err = s.srv.AddPath(ctx, &api.AddPathRequest{Path: path}); err == nil {
				s.paths[p] = r.Uuid
				continue
			}
		}
		errs = append(errs, fmt.Errorf("announce %s: %w", p, err))
	}
	return errors.Join(errs...)
}

func family(p netip.Prefix) *api.Family {
	if p.Addr().Is4() {
		return familyV4
	}
	return familyV6
}

// path builds the GoBGP path of a host route: origin IGP, the next hop
// left unspecified so GoBGP puts each session's local address there, and
// the configured MED and communities.
func (s *Speaker) path(p netip.Prefix) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	if err != nil {
		return nil, err
	}
	attrs := []*anypb.Any{}
	msgs := []proto.Message{&api.OriginAttribute{Origin: 0}}
	if p.Addr().Is4() {
		msgs = append(msgs, &api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		msgs = append(msgs, &api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	}
	if s.cfg.MEDSet {
		msgs = append(msgs, &api.MultiExitDiscAttribute{Med: s.cfg.MED})
	}
	if len(s.cfg.Communities) > 0 {
		msgs = append(msgs, &api.CommunitiesAttribute{Communities: s.cfg.Communities})
	}
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	return &api.Path{Family: family(p), Nlri: nlri, Pattrs: attrs}, nil
}

// Status implements Announcer.
func (s *Speaker) Status() Status {
	st := Status{Mode: config.BGPSpeaker}
	s.mu.Lock()
	for p := range s.paths {
		st.Announced = append(st.Announced, p)
	}
	closed := s.closed
	s.mu.Unlock()
	slices.SortFunc(st.Announced, comparePrefix)
	byAddr := map[string]*api.Peer{}
	if !closed {
		_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
			byAddr[p.GetConf().GetNeighborAddress()] = p
		})
	}
	for _, n := range s.cfg.Neighbors {
		peer := Peer{Address: n.Address, ASN: n.ASN, State: "idle"}
		if p := byAddr[n.Address.String()]; p != nil {
			peer.State = strings.ToLower(strings.TrimPrefix(p.GetState().GetSessionState().String(), "PeerState_"))
			if peer.State == "unknown" {
				peer.State = "idle"
			}
			if up := p.GetTimers().GetState().GetUptime(); up != nil && up.GetSeconds() > 0 {
				peer.Since = up.AsTime()
			}
			for _, af := range p.GetAfiSafis() {
				peer.Advertised += af.GetState().GetAdvertised()
				peer.Received += af.GetState().GetReceived()
			}
		}
		st.Peers = append(st.Peers, peer)
	}
	return st
}

// Close implements Announcer: it withdraws every VIP, then closes the
// sessions (a NOTIFICATION Cease, after which the routers drop the rest).
func (s *Speaker) Close() error {
	err := s.Announce(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stop()
	return err
}

func (s *Speaker) stop() {
	_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	s.srv.Stop()
}

// logAdapter writes GoBGP's log through zerolog.
type logAdapter struct {
	log   zerolog.Logger
	level gobgplog.LogLevel
}

func (l *logAdapter) event(e *zerolog.Event, msg string, f gobgplog.Fields) {
	for k, v := range f {
		e = e.Interface(strings.ToLower(k), v)
	}
	e.Msg(msg)
}

func (l *logAdapter) Panic(msg string, f gobgplog.Fields) { l.event(l.log.Error(), msg, f); panic(msg) }
func (l *logAdapter) Fatal(msg string, f gobgplog.Fields) { l.event(l.log.Error(), msg, f) }
func (l *logAdapter) Error(msg string, f gobgplog.Fields) { l.event(l.log.Error(), msg, f) }
func (l *logAdapter) Warn(msg string, f gobgplog.Fields)  { l.event(l.log.Warn(), msg, f) }
func (l *logAdapter) Info(msg string, f gobgplog.Fields)  { l.event(l.log.Info(), msg, f) }
func (l *logAdapter) Debug(msg string, f gobgplog.Fields) { l.event(l.log.Debug(), msg, f) }

// SetLevel implements GoBGP's log.Logger; the zerolog level filters.
func (l *logAdapter) SetLevel(level gobgplog.LogLevel) { l.level = level }

// GetLevel reports debug only when zerolog would write debug lines, so
// GoBGP skips building messages nobody reads.
func (l *logAdapter) GetLevel() gobgplog.LogLevel {
	if l.log.GetLevel() <= zerolog.DebugLevel {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
