package slowpath

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// The signalling counters (fastpath/signalling.go) in the API and metrics,
// and the paths of multihomed SCTP associations in GET /v1/associations.

var (
	descTagIndexHits = prometheus.NewDesc("ipfront_sctp_tag_index_hits_total",
		"SCTP packets of a path no association knew that the verification-tag index sent to their association's server (a multihomed peer's other addresses, either VIP).", nil, nil)
	descTagCollisions = prometheus.NewDesc("ipfront_sctp_tag_collisions_total",
		"SCTP associations whose verification tag another association of the set had already indexed for another server (their other paths keep their address keys).", nil, nil)
	descDiameterStale = prometheus.NewDesc("ipfront_diameter_stale_total",
		"Connections of diameter sets forgotten because they carried only capabilities exchange and disconnect within delete_age.", nil, nil)
)

// signallingOf is the API's view of a worker's (or the totals')
// signalling counters.
func signallingOf(c *fastpath.Counters) v1.Signalling {
	return v1.Signalling{TagIndexHits: c.TagIndexHits, TagCollisions: c.TagCollisions, DiameterStale: c.DiameterStale}
}

// collectSignalling exports the signalling counters' totals.
func collectSignalling(counter func(d *prometheus.Desc, v uint64, labels ...string), total *fastpath.Counters) {
	counter(descTagIndexHits, total.TagIndexHits)
	counter(descTagCollisions, total.TagCollisions)
	counter(descDiameterStale, total.DiameterStale)
}

// tagRef names an SCTP association across paths: its set and the
// verification tag its peer sends.
type tagRef struct {
	set uint16
	tag uint32
}

// addPaths fills SCTPTag, TagIndexed and Paths of the SCTP associations of
// page (whose infos are out, in the same order) that learned their tag. It
// walks every shard once, and only when the page has such an association:
// the paths of one association are spread over the workers that received
// them.
func addPaths(workers []PlaneWorker, t *fastpath.Tables, page []assocEntry, out []v1.Association) {
	want := map[tagRef]bool{}
	for i := range page {
		if e := &page[i]; e.k.Proto == sctpProto && e.v.Flags&assoc.FlagTagLearned != 0 {
			want[tagRef{e.k.Set, e.v.Tag}] = true
		}
	}
	if len(want) == 0 {
		return
	}
	paths := map[tagRef][]v1.Path{}
	indexed := map[tagRef]bool{}
	for shard := range workers {
		workers[shard].Assoc.Range(func(k assoc.Key, v assoc.Value) bool {
			switch {
			case k.Kind == assoc.KindTag:
				if r := (tagRef{k.Set, binary.BigEndian.Uint32(k.Addr[:4])}); want[r] {
					indexed[r] = true
				}
			case k.Kind == assoc.KindFlow && k.Proto == sctpProto && v.Flags&assoc.FlagTagLearned != 0:
				if r := (tagRef{k.Set, v.Tag}); want[r] {
					p := v1.Path{Client: netip.AddrFrom16(k.Addr).Unmap(), Port: k.Port, Worker: workers[shard].Name()}
					if s := serverOf(t, &k, v); s != nil {
						p.Server = s.Name
					}
					paths[r] = append(paths[r], p)
				}
			}
			return true
		})
	}
	for i := range page {
		e := &page[i]
		if e.k.Proto != sctpProto || e.v.Flags&assoc.FlagTagLearned == 0 {
			continue
		}
		r := tagRef{e.k.Set, e.v.Tag}
		ps := slices.Clone(paths[r])
		slices.SortFunc(ps, func(a, b v1.Path) int {
			return cmp.Or(a.Client.Compare(b.Client), cmp.Compare(a.Port, b.Port))
		})
		out[i].SCTPTag, out[i].TagIndexed, out[i].Paths = e.v.Tag, indexed[r], ps
	}
}

// sctpProto is SCTP's IP protocol number, as in association keys.
const sctpProto = 132
