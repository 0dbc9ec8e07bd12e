package ctl

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/config"
)

// TestTopScreen: "ctl top -n 1" prints one screen from the real API
// handler: every worker and every server with its state, and the active
// alarms (not the cleared ones).
func TestTopScreen(t *testing.T) {
	d := newDaemon(t, config.API{})
	if err := d.b.SetDrained(t.Context(), "web", "web-a", true); err != nil {
		t.Fatal(err)
	}
	d.b.UpdateServer("dns", dns1, func(st *slowpath.ServerState) { st.Healthy = false })
	d.b.SetAlarms([]slowpath.Alarm{{ID: "web-7", Set: "web", Active: true, Deviation: 0.25},
		{ID: "web-6", Set: "web", Active: false}})
	out := d.mustRun(t, "top", "-n", "1")
	if strings.Contains(out, ansiClear) {
		t.Errorf("top -n 1 wrote terminal control sequences:\n%q", out)
	}
	lines := strings.Split(out, "\n")
	workers, servers := findTable(t, lines, "WORKER"), findTable(t, lines, "SET")
	if len(workers) != 2 || !strings.HasPrefix(workers[0], "eth1/0 ") || !strings.HasPrefix(workers[1], "eth1/1 ") {
		t.Errorf("worker rows = %q, want eth1/0 and eth1/1", workers)
	}
	wantState := map[string]string{"web-a": "drained", "web-b": "up", "2001:db8::1": "down"}
	for _, row := range servers {
		f := strings.Fields(row)
		if len(f) < 4 {
			t.Errorf("server row %q has too few columns", row)
			continue
		}
		if want, ok := wantState[f[1]]; !ok || f[3] != want {
			t.Errorf("server row %q: state %q, want %q", row, f[3], want)
		}
		delete(wantState, f[1])
	}
	if len(wantState) > 0 {
		t.Errorf("servers missing from top: %v\n%s", wantState, out)
	}
	if !strings.Contains(out, "web-7: balance of set web off by 25.0%") || strings.Contains(out, "web-6") {
		t.Errorf("alarms: want web-7 active shown and the cleared web-6 not:\n%s", out)
	}
}

// findTable returns the rows under the header line starting with col, up
// to the next empty line.
func findTable(t *testing.T, lines []string, col string) []string {
	t.Helper()
	for i, l := range lines {
		if strings.HasPrefix(l, col+" ") {
			var rows []string
			for _, r := range lines[i+1:] {
				if strings.TrimSpace(r) == "" {
					break
				}
				rows = append(rows, r)
			}
			return rows
		}
	}
	t.Fatalf("no table headed %s", col)
	return nil
}

// TestTopDropRate: drops per second come from two samples' worker
// counters over the time between them; the first screen has none.
func TestTopDropRate(t *testing.T) {
	at := time.Unix(1000, 0)
	sample := func(at time.Time, dropped uint64) *topSample {
		return &topSample{at: at, status: v1.Status{Ready: true, Workers: []v1.Worker{{Name: "eth1/0", CPU: 1, Capacity: 100}}},
			counters: v1.Counters{Workers: []v1.WorkerCounters{{Name: "eth1/0", Dropped: dropped}}}}
	}
	first, second := sample(at, 100), sample(at.Add(2*time.Second), 1100)
	var b bytes.Buffer
	renderTop(&b, "api", first, nil, false)
	if row := findTable(t, strings.Split(b.String(), "\n"), "WORKER")[0]; strings.Fields(row)[4] != "-" {
		t.Errorf("first screen's DROPS/S in %q, want -", row)
	}
	b.Reset()
	renderTop(&b, "api", second, first, false)
	if row := findTable(t, strings.Split(b.String(), "\n"), "WORKER")[0]; strings.Fields(row)[4] != "500" {
		t.Errorf("DROPS/S in %q, want 500 (1000 drops over 2 s)", row)
	}
}

// syncWriter collects top's output and reports each write.
type syncWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes chan struct{}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.writes <- struct{}{}:
	default:
	}
	return w.b.Write(p)
}

func (w *syncWriter) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.b.String() }

// TestTopQuits: the interactive view redraws (clear screen, cursor hidden)
// until q is typed or Ctrl-C (SIGINT) arrives, then returns cleanly with
// the cursor shown again.
func TestTopQuits(t *testing.T) {
	d := newDaemon(t, config.API{})
	for _, how := range []string{"q", "ctrl-c"} {
		t.Run(how, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			out := &syncWriter{writes: make(chan struct{}, 1)}
			c, err := newCtlClient(d.api, "")
			if err != nil {
				t.Fatal(err)
			}
			o := &ctlOpts{stdout: out, stderr: out, top: topOpts{interval: 20 * time.Millisecond}}
			done := make(chan error, 1)
			go func() { done <- runTop(o, c, r) }()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			// Two screens: the loop runs and its signal handler is set.
			for frames := 0; frames < 2; {
				select {
				case <-out.writes:
					if strings.Count(out.String(), ansiClear) >= 2 {
						frames = 2
					}
				case err := <-done:
					t.Fatalf("top returned before being asked to: %v", err)
				case <-ctx.Done():
					t.Fatal("top drew no screens")
				}
			}
			if how == "q" {
				if _, err := w.Write([]byte("q")); err != nil {
					t.Fatal(err)
				}
			} else if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("top after %s = %v, want nil", how, err)
				}
			case <-ctx.Done():
				t.Fatalf("top still running after %s", how)
			}
			s := out.String()
			if !strings.HasPrefix(s, ansiHideCursor) || !strings.HasSuffix(s, ansiShowCursor) || !strings.Contains(s, "WORKER") {
				t.Errorf("output does not hide the cursor, draw screens and show the cursor again:\n%q", s)
			}
		})
	}
}
