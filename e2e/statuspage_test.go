//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ipfront/ipfront/internal/lab"
)

// TestStatusPage opens ipfront's status page (slowpath/ui) in headless
// Chromium, driven with chromedp, and asserts on the rendered DOM while the
// lab changes under it: four servers s1..s4 of equal weight, the page
// loaded before any traffic (every row "up", every share 0); one heavy
// "iplab load" connection through the VIP makes its server's share on the
// page rise above a half with a non-zero pps, and the balance alarm the
// imbalance raises appears in the page's alarm banner under the id
// /v1/alarms gives; a second server's Drain button, answered "cancel" in
// its confirmation, changes nothing, answered "OK" drains it (the API
// agrees) and its row turns "drained" with an Enable button; a third
// server's echo service is stopped and its row turns "down" from the
// health checks. On a 390-pixel phone screen the page must not scroll
// sideways and every row's state, share and button must be on the screen
// (each table row becomes a small card there).
//
// Screenshots go to the test's artifact directory (go test -artifacts
// -outputdir DIR keeps them): status-page.png at 1280 pixels wide, and
// status-page-phone.png at 390. docs/status-page.png is a copy of the
// first (the load's fixed source port hashes to s3, so s1 is the one
// drained and s2 the one stopped). Looked at, it shows top to bottom: a
// header "ipfront", a green "ready" pill, "generation 5", "last reload
// succeeded (last success <time>)" and "updated <time>"; a red banner
// "balance-e2e-1 Balance alarm on set e2e since <time>: deviation 50.0%
// (s3: 100.0% of packets, weight share 50.0%)"; a grey notice "drained
// e2e/s1 (198.51.100.11): effective weight 0"; the set's card "e2e
// 192.0.2.10 tcp/udp 7000-7010 · hash · dsr · 1 associations" with four
// rows: s1 with a grey "drained" pill, weight 1 / 0 and an Enable button;
// s2 with a red "down" pill; s3 "up" in green, weight 1 / 0 (the alarm
// steers new associations away from it), 1 association, "100.0% of
// packets · weight share 50.0%" over a full blue bar with the weight-share
// mark at its middle, about 850 pps and 8.4M bit/s, and a sparkline that
// rises at its right end; s4 "up", 1 / 1, 0.0% with its mark at the middle;
// every row but s1's has a Drain button, and the others' sparklines lie
// flat on their baselines. Below, the Workers card: "rx 3.4k packets, tx
// 3.4k, dropped 0, 1 associations ..." and one row veth-lb/0 (not
// pinned): about 850 / 850 pps, 3.4k / 3.4k packets, 1 / 81.9k
// associations, 0 / 41.0k unproven, drops "none". The phone screenshot
// has the same content in one column, each server a small card with its
// figures two by two under their names and its button at the bottom
// right.
//
// It skips, saying why, only where the chromium binary is not installed
// (.ci/run installs Debian's chromium package).
func TestStatusPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian package chromium): the status page's browser test cannot run")
	}
	servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}, {"s4", 1}}
	e := startSP(t, 4, spConfig{
		Servers: servers,
		Health: `
			type = "tcp"
			port = 7000
			interval = "200ms"
			timeout = "100ms"
			rise = 2
			fall = 2`,
		Balance: `
			enabled = true
			threshold = 0.2
			clear = 0.1
			window = "2s"
			sustain = "1s"`,
	})
	b := startBrowser(t, e, chromium)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(apiURL+"/")); err != nil {
		t.Fatalf("open the status page: %v", err)
	}

	// Every configured server has its row, up, with no traffic yet.
	b.waitRows("every server up, no traffic", func(rows map[string]pageRow) (bool, string) {
		if len(rows) != len(servers) {
			return false, fmt.Sprintf("%d rows, want %d", len(rows), len(servers))
		}
		for _, s := range servers {
			r, ok := rows[setName+"/"+s.Role]
			if !ok || r.State != "up" || r.Share != 0 || r.Button != "Drain" {
				return false, fmt.Sprintf("%s: %+v, want state up, share 0, a Drain button", s.Role, r)
			}
		}
		return true, ""
	})
	if ctl, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.dataset.control`)); err != nil || ctl != "true" {
		t.Errorf("page control = %q (%v), want true on a loopback listener", ctl, err)
	}

	// One heavy connection: its server's share rises on the page, and the
	// imbalance raises the balance alarm, shown in the banner.
	load := startStream[lab.LoadReport](e, "load", "--rate", "1000000", "--sport", fmt.Sprint(e.sports(1)))
	heavy := load.ready.Server
	var others []string
	for _, s := range servers {
		if s.Role != heavy {
			others = append(others, s.Role)
		}
	}
	if heavy == "" || len(others) != 3 {
		t.Fatalf("iplab load: server %q, want one of s1..s4", heavy)
	}
	drained, down := others[0], others[1]
	b.waitRows(heavy+"'s share rises", func(rows map[string]pageRow) (bool, string) {
		r := rows[setName+"/"+heavy]
		return r.Share > 0.5 && r.PPS != "0" && r.PPS != "", fmt.Sprintf("%+v, want share above 0.5 and pps", r)
	})
	var alarms apiAlarms
	e.waitFor(15*time.Second, "balance alarm raised", func() (bool, string) {
		e.api("/v1/alarms", &alarms)
		for _, a := range alarms.Alarms {
			if a.Active {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", alarms)
	})
	var alarmID string
	for _, a := range alarms.Alarms {
		if a.Active {
			alarmID = a.ID
		}
	}
	b.waitFor("alarm banner", func() (bool, string) {
		text, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`(() => { const b = document.getElementById('alarms'); const a = b.querySelector('[data-alarm=%q]');
			  return b.hidden || !a ? '' : a.textContent; })()`, alarmID)))
		return err == nil && strings.Contains(text, "Balance alarm on set "+setName), fmt.Sprintf("banner %q (%v)", text, err)
	})

	// Drain with the button: cancelled first, which changes nothing, then
	// confirmed.
	accept := &atomic.Bool{}
	dialogs := b.answerDialogs(accept)
	b.click(setName + "/" + drained)
	msg := <-dialogs
	if !strings.Contains(msg, "Drain "+drained+" ("+e.host(drained).IPv4.String()+") in set "+setName) {
		t.Errorf("confirmation %q, want it to name %s, its address and set %s", msg, drained, setName)
	}
	b.waitFor("cancel notice", func() (bool, string) {
		n, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('notice').textContent`))
		return err == nil && n == "drain of "+setName+"/"+drained+" cancelled", fmt.Sprintf("notice %q (%v)", n, err)
	})
	if s := e.serverStates()[drained]; s.Drained {
		t.Fatalf("%s drained although the confirmation was cancelled: %+v", drained, s)
	}
	accept.Store(true)
	b.click(setName + "/" + drained)
	<-dialogs
	b.waitRows(drained+" drained", func(rows map[string]pageRow) (bool, string) {
		r := rows[setName+"/"+drained]
		return r.State == "drained" && r.Button == "Enable", fmt.Sprintf("%+v, want drained with an Enable button", r)
	})
	if s := e.serverStates()[drained]; !s.Drained || s.EffectiveWeight != 0 {
		t.Errorf("/v1/servers %s after the page's drain = %+v, want drained, effective weight 0", drained, s)
	}

	// A server whose service stops is shown down.
	e.stopServer(down)
	b.waitRows(down+" down", func(rows map[string]pageRow) (bool, string) {
		r := rows[setName+"/"+down]
		return r.State == "down", fmt.Sprintf("%+v, want down", r)
	})
	b.waitRows("the rest", func(rows map[string]pageRow) (bool, string) {
		h, u := rows[setName+"/"+heavy], rows[setName+"/"+others[2]]
		return h.State == "up" && u.State == "up", fmt.Sprintf("%s %+v, %s %+v, want both up", heavy, h, others[2], u)
	})
	b.screenshot("status-page.png")

	// On a phone the page fits the screen's width.
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	b.waitFor("phone width", func() (bool, string) {
		w, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		return err == nil && len(w) == 2 && w[1] == 390 && w[0] <= w[1], fmt.Sprintf("page width %v (%v), want at most the 390-pixel screen", w, err)
	})
	// Not only no sideways scrolling of the page: every row's state, share
	// and button are on the screen, not scrolled away inside a table.
	offscreen, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr[data-server]')].flatMap((r) =>
		['[data-col=state]', '[data-col=share]', 'button[data-action]'].filter((sel) => {
			const b = r.querySelector(sel).getBoundingClientRect();
			return b.width === 0 || b.left < 0 || b.right > window.innerWidth;
		}).map((sel) => r.dataset.server + ' ' + sel))`))
	if err != nil || len(offscreen) != 0 {
		t.Errorf("on a 390-pixel screen, off the screen: %v (%v)", offscreen, err)
	}
	b.screenshot("status-page-phone.png")

	if lr := load.stop(e); lr.Kind != "" || lr.BytesVerified != lr.BytesSent {
		t.Errorf("iplab load: %d of %d bytes verified, failure %q (%s)", lr.BytesVerified, lr.BytesSent, lr.Kind, lr.Error)
	}
}

// pageRow is one server row as the page renders it.
type pageRow struct {
	State  string  `json:"state"`
	Share  float64 `json:"share"`
	PPS    string  `json:"pps"`
	Button string  `json:"button"`
}

// browser is a headless Chromium running in the load balancer's namespace,
// where the API listens on 127.0.0.1, as an operator's browser on that host
// would reach it.
type browser struct {
	t   *testing.T
	e   *spEnv
	ctx context.Context
}

// startBrowser starts Chromium with the flags a test browser needs (no
// sandbox as root, no GPU, nothing fetched in the background, a fresh
// profile) inside the load balancer's namespace; it is stopped when the
// test ends, and its output is logged if the test failed.
func startBrowser(t *testing.T, e *spEnv, chromium string) *browser {
	t.Helper()
	profile := t.TempDir() // removed after the browser's cleanup below
	out := &syncBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
		// The browser runs inside the namespace: "ip netns exec" execs
		// it, keeping chromedp's pipe descriptors.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"ip", "netns", "exec", e.lab.LB().NS}, cmd.Args...)
			cmd.Path, _ = exec.LookPath("ip")
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(e.ctx, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.tail(8<<10))
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v\n%s", err, out.tail(8<<10))
	}
	return &browser{t: t, e: e, ctx: ctx}
}

// rows reads the page's server rows, by "set/server".
func (b *browser) rows() (map[string]pageRow, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[map[string]pageRow](`Object.fromEntries(
		[...document.querySelectorAll('tr[data-server]')].map((r) => [r.dataset.server, {
			state: r.dataset.state,
			share: Number(r.querySelector('[data-col=share]').dataset.share),
			pps: r.querySelector('[data-col=pps]').textContent,
			button: (r.querySelector('button[data-action]') || {}).textContent || '',
		}]))`))
}

// waitFor polls cond (which reads the page) until it holds, within 15 s.
func (b *browser) waitFor(what string, cond func() (bool, string)) {
	b.t.Helper()
	b.e.waitFor(15*time.Second, "status page: "+what, cond)
}

// waitRows waits until the page's server rows satisfy cond.
func (b *browser) waitRows(what string, cond func(map[string]pageRow) (bool, string)) {
	b.t.Helper()
	b.waitFor(what, func() (bool, string) {
		rows, err := b.rows()
		if err != nil {
			return false, err.Error()
		}
		if ok, why := cond(rows); !ok {
			return false, why
		}
		return true, ""
	})
}

// answerDialogs answers every confirmation the page opens with accept's
// value at that moment, and sends its message on the returned channel.
func (b *browser) answerDialogs(accept *atomic.Bool) <-chan string {
	msgs := make(chan string, 4)
	go func() {
		for ev, err := range chromedp.Events(b.ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept.Load()})
			msgs <- ev.Message
		}
	}()
	return msgs
}

// click clicks the action button of server row key with the mouse, where
// the page shows it. The page redraws its rows every second, so the
// button's place is read and clicked rather than a DOM node that the next
// redraw replaces; whichever button is drawn there takes the click.
func (b *browser) click(key string) {
	b.t.Helper()
	xy, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]float64](fmt.Sprintf(`(() => {
		const btn = document.querySelector('tr[data-server=%q] button[data-action]');
		btn.scrollIntoView({block: 'center'});
		const r = btn.getBoundingClientRect();
		return [r.x + r.width / 2, r.y + r.height / 2]; })()`, key)))
	if err != nil || len(xy) != 2 {
		b.t.Fatalf("find %s's button: %v %v", key, xy, err)
	}
	if err := chromedp.Do(b.ctx, chromedp.MouseClickXY(xy[0], xy[1])); err != nil {
		b.t.Fatalf("click %s's button: %v", key, err)
	}
}

// screenshot saves a full-page PNG in the test's artifact directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// syncBuffer is a bytes.Buffer safe for the browser's output goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// tail returns the last n bytes written.
func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
