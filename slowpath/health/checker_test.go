package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHysteresis(t *testing.T) {
	// probes: s = success, f = failure; want: the verdict after each probe
	// that changed it (u = up, d = down), '.' where nothing changed.
	tests := []struct {
		name       string
		rise, fall int
		start      verdict
		probes     string
		want       string
	}{
		{"unknown to up after rise", 2, 3, verdictUnknown, "sss", ".u."},
		{"unknown to down after fall", 2, 3, verdictUnknown, "ffff", "..d."},
		{"unknown flapping", 2, 3, verdictUnknown, "sfsffsfsff", ".........."},
		{"up stays up below fall", 2, 3, verdictUp, "ffsffsffs", "........."},
		{"up to down after fall", 2, 3, verdictUp, "ffsfff", ".....d"},
		{"down stays down below rise", 3, 1, verdictDown, "ssfssfss", "........"},
		{"down to up after rise", 3, 1, verdictDown, "ssfsss", ".....u"},
		{"rise and fall of one", 1, 1, verdictUnknown, "sfsf", "udud"},
		{"long runs saturate", 2, 2, verdictUnknown, strings.Repeat("s", 100) + "ff", "." + "u" + strings.Repeat(".", 99) + "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hysteresis{rise: tt.rise, fall: tt.fall, state: tt.start}
			var got strings.Builder
			for _, p := range tt.probes {
				switch {
				case !h.observe(p == 's'):
					got.WriteByte('.')
				case h.state == verdictUp:
					got.WriteByte('u')
				default:
					got.WriteByte('d')
				}
			}
			if got.String() != tt.want {
				t.Errorf("probes %s = %s, want %s", tt.probes, got.String(), tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Check{Type: TypeHTTP, Port: 80, Path: "/healthz?full=1", Interval: time.Second, Timeout: time.Second / 2, Rise: 2, Fall: 3}
	tests := []struct {
		name  string
		check func(*Check)
		want  string // in the error; "" for valid
	}{
		{"valid", func(*Check) {}, ""},
		{"empty path", func(c *Check) { c.Path = "" }, ""},
		{"none ignores the rest", func(c *Check) { *c = Check{Type: TypeNone} }, ""},
		{"no type", func(c *Check) { c.Type = "" }, "type"},
		{"no port", func(c *Check) { c.Port = 0 }, "port"},
		{"no interval", func(c *Check) { c.Interval = 0 }, "interval"},
		{"no timeout", func(c *Check) { c.Timeout = 0 }, "timeout"},
		{"no rise", func(c *Check) { c.Rise = 0 }, "rise"},
		{"no fall", func(c *Check) { c.Fall = -1 }, "fall"},
		{"bad status", func(c *Check) { c.ExpectStatus = 1000 }, "status"},
		{"relative path", func(c *Check) { c.Path = "healthz" }, "path"},
		{"path with a host", func(c *Check) { c.Path = "//example.com/x" }, "path"},
		{"tcp ignores path", func(c *Check) { c.Type = TypeTCP; c.Path = "x" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.check(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", c, err)
			case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate(%+v) = %v, want ErrInvalid about %s", c, err, tt.want)
			}
		})
	}
}

func TestWaitTickSkipsTicksDuringProbe(t *testing.T) {
	end := time.Now()
	c := make(chan time.Time, 3)
	c <- end.Add(-2 * time.Millisecond) // fired while the probe ran
	c <- end.Add(-time.Millisecond)
	c <- end.Add(time.Millisecond)
	if !waitTick(context.Background(), c, end) {
		t.Fatal("waitTick = false, want true")
	}
	if len(c) != 0 {
		t.Errorf("waitTick left %d ticks, want it to return on the first after the probe", len(c))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c <- end.Add(-time.Millisecond)
	if waitTick(ctx, c, end) {
		t.Error("waitTick on a cancelled context = true, want false")
	}
}
