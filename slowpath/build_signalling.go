package slowpath

import (
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// TestHooksEnv names the environment variable of test hooks: a
// comma-separated list of behaviours a test may switch off to show what
// they do. It is read once per process and is no configuration key: no
// deployment sets it.
//
//   - no-sctp-tag-index: SCTP associations are not indexed by verification
//     tag, so a multihomed peer's other paths land by the hash
//     (fastpath.TargetSet.NoTagIndex). The end-to-end tests use it to prove
//     the index.
const TestHooksEnv = "IPFRONT_TEST_HOOKS"

// HookNoTagIndex is the test hook that turns the SCTP tag index off.
const HookNoTagIndex = "no-sctp-tag-index"

// testHooks are the hooks TestHooksEnv lists, read on first use.
var testHooks = sync.OnceValue(func() []string {
	return strings.Split(os.Getenv(TestHooksEnv), ",")
})

// testHook reports whether TestHooksEnv lists hook.
func testHook(hook string) bool { return slices.Contains(testHooks(), hook) }

// buildSignalling fills the signalling fields of ts from cs: the secondary
// VIP, Diameter staleness and the tag-index test hook. Owned port ranges
// (initiator mode) come from buildPersist, as the fast path matches them
// the same way whatever the mode.
func buildSignalling(ts *fastpath.TargetSet, cs *config.TargetSet) {
	if cs.SecondaryAddress.IsValid() {
		ts.SecondaryVIP, ts.HasSecondary = cs.SecondaryAddress.As16(), true
	}
	ts.Diameter = cs.Diameter
	ts.NoTagIndex = testHook(HookNoTagIndex)
}
