//go:build linux

package main

// FTP through the NAT (issue 8): ipfront's NAT set with helper = "ftp"
// against nftables DNAT with the kernel's FTP conntrack helper (a `ct helper`
// object of type "ftp", assigned to the VIP's port 21; nf_nat_ftp rewrites
// the 227 reply and translates the expected data connections), on the NAT
// topology, one core each. vsftpd runs on the first ftpServers servers, curl
// in the client's namespace from natClientIP, all of them on core genCPU.
//
//   - sessions/s: ftpWorkers curl processes at once, each running
//     ftpSessions sessions one after another; a session is a login of its
//     own (curl does not reuse a control connection whose credentials
//     differ), one PASV or PORT, the download of a 1 KiB file, QUIT;
//   - transfer: one session downloading a ftpBytes file (payload Mbit/s).
//
// Both in passive (PASV, 227: the reply's server address rewritten to the
// VIP) and active mode (PORT: the server's data connection from port 20
// translated to leave from the VIP).

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

const (
	// ftpServers is how many servers run vsftpd (and are in both peers'
	// FTP sets).
	ftpServers = 4
	// ftpPassive is the servers' passive range (pasv_min_port-pasv_max_port).
	ftpPassive = "30000-30099"
	// ftpSmall is the size of the file a session downloads.
	ftpSmall = 1024
)

// vsftpdPath is vsftpd from $PATH, or where Debian puts it.
func vsftpdPath() string {
	if p, err := exec.LookPath("vsftpd"); err == nil {
		return p
	}
	return "/usr/sbin/vsftpd"
}

// ftpMissing is why the FTP section cannot run here, or "".
func ftpMissing() string {
	if _, err := os.Stat(vsftpdPath()); err != nil {
		return "vsftpd not installed (Debian package vsftpd)"
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return "curl not installed"
	}
	if _, err := os.Stat("/var/run/vsftpd/empty"); err != nil {
		return "no /var/run/vsftpd/empty (the vsftpd package creates it)"
	}
	return ""
}

// ftpWorkloads are the workloads of one FTP round, in order.
var ftpWorkloads = []struct {
	name     string
	active   bool
	transfer bool
}{
	{"passive sessions", false, false},
	{"active sessions", true, false},
	{"passive transfer", false, true},
	{"active transfer", true, true},
}

// natFTPSteps measures the FTP section. The NAT topology is on.
func (h *harness) natFTPSteps(ctx context.Context, e *env) {
	r, p := h.res, h.p
	ipfKey, nftKey := "ipfront-ftp", "nft-ftp"
	ipfPeer, nftPeer := "ipfront NAT + helper = \"ftp\" (busy_poll=true)", "nftables DNAT + conntrack FTP helper (ct helper \"ftp\")"
	skipAll := func(why string) {
		for _, w := range ftpWorkloads {
			r.natFTP = append(r.natFTP, rateResult{Key: ipfKey + " " + w.name, Peer: ipfPeer, Workload: w.name, Skipped: why},
				rateResult{Key: nftKey + " " + w.name, Peer: nftPeer, Workload: w.name, Skipped: why})
		}
	}
	if why := ftpMissing(); why != "" {
		skipAll(why)
		return
	}
	var undo func() error
	var servers []*proc
	var root string
	guardOff := func() {}
	h.step(ctx, "NAT FTP: client and vsftpd", func() error {
		var err error
		if undo, err = e.natClientOn(); err != nil {
			return err
		}
		if _, err := e.t.placement(placeRPS); err != nil {
			return err
		}
		if root, err = ftpRoot(p.ftpBytes); err != nil {
			return err
		}
		if servers, err = e.startVsftpd(ctx, root); err != nil {
			return err
		}
		guardOff, err = e.ftpClientGuard()
		return err
	})
	defer func() {
		guardOff()
		for _, s := range servers {
			s.kill()
		}
		if root != "" {
			os.RemoveAll(root)
		}
		if undo != nil {
			if err := undo(); err != nil {
				r.fail("NAT FTP teardown", err)
			}
		}
	}()
	if len(servers) != ftpServers {
		return
	}
	r.ftpWorkers, r.ftpSessions = p.ftpWorkers, p.ftpSessions
	c := defaultIPF(true, 1<<16)
	c.forwarding, c.ftp = "nat", true
	peers := []rateRun{
		{"ipfront NAT + FTP helper", func() []rateResult {
			ipf, err := e.startIPFront(ctx, "ipfront-ftp", c)
			if err != nil {
				return e.ftpFailed(ipfKey, ipfPeer, err)
			}
			defer ipf.p.stop(10 * time.Second)
			return e.ftpWorkloads(ctx, ipfKey, ipfPeer, p)
		}},
		{"nftables DNAT + FTP helper", func() []rateResult {
			if why := nftMissing(); why != "" {
				return e.ftpFailed(nftKey, nftPeer, errors.New(why))
			}
			helper := fmt.Sprintf("\tct helper ftp-std {\n\t\ttype \"ftp\" protocol tcp;\n\t}\n"+
				"\tchain helper {\n\t\ttype filter hook prerouting priority -150; policy accept;\n"+
				"\t\tip daddr %s tcp dport 21 ct helper set \"ftp-std\"\n\t}\n", e.t.vip)
			undo, err := e.nftDNATOn(nftDNATRules(e.t, e.t.servers[:ftpServers], helper))
			if err != nil {
				return e.ftpFailed(nftKey, nftPeer, err)
			}
			defer undo()
			return e.ftpWorkloads(ctx, nftKey, nftPeer, p)
		}},
	}
	r.natFTP = h.interleavedRates(ctx, "NAT FTP: ", peers)
}

// ftpClientGuard makes the client refuse every packet to or from the FTP
// servers' own addresses, so that a session only completes through a peer
// that translated what it must: the 227 reply's address to the VIP (the
// client would otherwise reach a server's address directly) and an active
// data connection's source to the VIP (curl would otherwise accept it from
// the server's address). The returned function removes the guard.
func (e *env) ftpClientGuard() (func(), error) {
	if why := nftMissing(); why != "" {
		return func() {}, nil // without nft neither is nftables DNAT measured
	}
	var addrs []string
	for _, s := range e.t.servers[:ftpServers] {
		addrs = append(addrs, s.ip.String())
	}
	set := strings.Join(addrs, ", ")
	rules := fmt.Sprintf(`table ip ipfbench-guard {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr { %s } drop
	}
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr { %s } drop
	}
}
`, set, set)
	ns := e.t.client.ns
	if err := run("ip", "netns", "exec", ns, "nft", "-f", "-", rules); err != nil {
		return func() {}, err
	}
	return func() { _ = run("ip", "netns", "exec", ns, "nft", "delete", "table", "ip", "ipfbench-guard") }, nil
}

// ftpFailed is every workload of a peer that could not be set up.
func (e *env) ftpFailed(key, peer string, err error) []rateResult {
	var out []rateResult
	for _, w := range ftpWorkloads {
		out = append(out, rateResult{Key: key + " " + w.name, Peer: peer, Workload: w.name, Err: err})
	}
	return out
}

// ftpWorkloads measures every FTP workload through the peer now set up.
func (e *env) ftpWorkloads(ctx context.Context, key, peer string, p params) []rateResult {
	var out []rateResult
	for _, w := range ftpWorkloads {
		r := rateResult{Key: key + " " + w.name, Peer: peer, Workload: w.name}
		if w.transfer {
			e.ftpTransfer(ctx, w.active, p.ftpBytes, &r)
		} else {
			e.ftpSessions(ctx, w.active, p.ftpWorkers, p.ftpSessions, &r)
		}
		out = append(out, r)
	}
	return out
}

// ftpModeOpts are curl's options for passive (PASV, the 227 reply's address
// used as it comes) or active (PORT from the control connection's address)
// mode.
func ftpModeOpts(active bool) []string {
	if active {
		return []string{"--ftp-port", "-", "--disable-eprt"}
	}
	return []string{"--disable-epsv", "--no-ftp-skip-pasv-ip"}
}

// curlFTP runs curl in the client's namespace on the generator's core and
// returns its standard output (one -w line per transfer), whatever its exit
// status: a failed transfer shows in its line.
func (e *env) curlFTP(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.t.client.ns, "taskset", "-c", fmt.Sprint(genCPU), "curl"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return "", fmt.Errorf("curl: %v: %s", err, tail(stderr.String(), 300))
	}
	return string(out), nil
}

// ftpSessions runs workers curl processes at once, each running sessions
// sessions, and counts the sessions that downloaded the whole small file.
func (e *env) ftpSessions(ctx context.Context, active bool, workers, sessions int, r *rateResult) {
	url := fmt.Sprintf("ftp://%s/small.bin", e.t.vip)
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		errs   []error
		ok     int
		failed []string
	)
	t0 := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var args []string
			for s := range sessions {
				if s > 0 {
					args = append(args, "--next")
				}
				args = append(args, "-sS", "--connect-timeout", "5", "--max-time", "30")
				args = append(args, ftpModeOpts(active)...)
				// Credentials of their own: curl opens a new control
				// connection for them instead of reusing the last one.
				args = append(args, "-u", fmt.Sprintf("anonymous:w%ds%d", w, s), "-o", "/dev/null",
					"-w", "%{response_code} %{size_download} %{num_connects}\\n", url)
			}
			out, err := e.curlFTP(ctx, args...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			n := 0
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Fields(line)
				// The code is the session's last reply curl saw: 226
				// (transfer complete) or, when curl closed the control
				// connection before the next session, 221 (QUIT).
				if len(f) == 3 && (f[0] == "226" || f[0] == "221") && f[1] == strconv.Itoa(ftpSmall) && f[2] != "0" {
					ok++
				} else if len(failed) < 3 {
					failed = append(failed, strconv.Quote(line))
				}
				n++
			}
			if n < sessions {
				failed = append(failed, fmt.Sprintf("%d sessions without a report", sessions-n))
			}
		}()
	}
	wg.Wait()
	r.Seconds = time.Since(t0).Seconds()
	r.N, r.Failed = ok, workers*sessions-ok
	r.Err = errors.Join(errs...)
	if r.Failed > 0 {
		r.Note = fmt.Sprintf("%d of %d sessions failed: %s", r.Failed, workers*sessions, strings.Join(failed, ", "))
	}
}

// ftpTransfer downloads the big file in one session.
func (e *env) ftpTransfer(ctx context.Context, active bool, size int64, r *rateResult) {
	args := append([]string{"-sS", "--connect-timeout", "5", "--max-time", "120"}, ftpModeOpts(active)...)
	args = append(args, "-u", "anonymous:transfer", "-o", "/dev/null",
		"-w", "%{response_code} %{size_download} %{time_pretransfer} %{time_total}\\n", fmt.Sprintf("ftp://%s/big.bin", e.t.vip))
	out, err := e.curlFTP(ctx, args...)
	if err != nil {
		r.Err = err
		return
	}
	f := strings.Fields(out)
	if len(f) != 4 || (f[0] != "226" && f[0] != "221") || f[1] != strconv.FormatInt(size, 10) {
		r.Failed, r.Err = 1, fmt.Errorf("transfer of %d bytes: curl reported %q", size, strings.TrimSpace(out))
		return
	}
	pre, _ := strconv.ParseFloat(f[2], 64)
	total, _ := strconv.ParseFloat(f[3], 64)
	// The data connection's time: from the transfer's start (after login
	// and PASV/PORT) to its end.
	r.N, r.Bytes, r.Seconds = 1, size, total-pre
}

// ftpRoot makes the servers' shared anonymous root: small.bin (random) and
// big.bin (size bytes, sparse: read from the page cache, no disk).
func ftpRoot(size int64) (string, error) {
	dir, err := os.MkdirTemp("", "ipfront-bench-ftp-")
	if err != nil {
		return "", err
	}
	// vsftpd drops to user ftp, which must reach the files.
	if err := os.Chmod(dir, 0o755); err != nil {
		return dir, err
	}
	small := make([]byte, ftpSmall)
	rand.Read(small)
	if err := os.WriteFile(filepath.Join(dir, "small.bin"), small, 0o644); err != nil {
		return dir, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "big.bin"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return dir, err
	}
	return dir, errors.Join(f.Truncate(size), f.Close())
}

// startVsftpd runs vsftpd on the first ftpServers servers (anonymous
// download from root, the passive range, active connections from port 20)
// on the generator's core, and waits until each greets the client directly.
func (e *env) startVsftpd(ctx context.Context, root string) ([]*proc, error) {
	lo, hi, _ := strings.Cut(ftpPassive, "-")
	var ps []*proc
	for _, s := range e.t.servers[:ftpServers] {
		conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=%s
write_enable=NO
local_enable=NO
pasv_enable=YES
pasv_min_port=%s
pasv_max_port=%s
port_enable=YES
connect_from_port_20=YES
xferlog_enable=NO
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
max_clients=0
max_per_ip=0
ftpd_banner=ipfront bench %s
`, root, lo, hi, s.role)
		path := filepath.Join(e.out, "configs", "vsftpd-"+s.role+".conf")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return ps, err
		}
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return ps, err
		}
		p, err := e.t.start(s.ns, "vsftpd-"+s.role, e.logDir, "taskset", "-c", fmt.Sprint(genCPU), vsftpdPath(), path)
		if err != nil {
			return ps, err
		}
		ps = append(ps, p)
	}
	for i, s := range e.t.servers[:ftpServers] {
		if err := waitFTPGreeting(ctx, e.t.client.ns, netip.AddrPortFrom(s.ip, 21), ps[i].done); err != nil {
			return ps, fmt.Errorf("vsftpd on %s: %w; log %s", s.role, err, ps[i].log)
		}
	}
	return ps, nil
}

// waitFTPGreeting connects from ns to addr until an FTP server greets with
// 220 (10 s at most), or exited is closed.
func waitFTPGreeting(ctx context.Context, ns string, addr netip.AddrPort, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last error
	for {
		c, err := lab.DialContext(ctx, ns, "tcp", addr.String())
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "220 ") {
				return nil
			}
			err = fmt.Errorf("greeting %q: %v", line, rerr)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-exited:
			return errors.New("exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// natFTPTargets are issue 8's FTP rows: ipfront's NAT + FTP helper at least
// matches nftables DNAT + the kernel's FTP helper in sessions/s and transfer
// throughput, passive and active.
func natFTPTargets(rs []rateResult) []target {
	var ts []target
	for _, w := range ftpWorkloads {
		a, b := findRate(rs, "ipfront-ftp "+w.name), findRate(rs, "nft-ftp "+w.name)
		unit, what := "sessions/s", "sessions/s (login, PASV or PORT, 1 KiB download, QUIT)"
		if w.transfer {
			unit, what = "Mbit/s", "transfer throughput (one download)"
		}
		mode := "passive"
		if w.active {
			mode = "active"
		}
		m, known := "n/a", a.ok() && b.ok()
		if known {
			m = fmt.Sprintf("%.0f vs %.0f %s (x%.2f)%s", a.rate(), b.rate(), unit, safeDiv(a.rate(), b.rate()), rateRounds(a))
		}
		ts = append(ts, target{fmt.Sprintf("ipfront NAT + helper = \"ftp\" >= nftables DNAT + the kernel's FTP helper in %s FTP %s, one core each", mode, what),
			m, verdict(known && a.rate() >= b.rate(), known)})
	}
	return ts
}

// natFTPSection writes the FTP table.
func natFTPSection(w *strings.Builder, r *results) {
	fmt.Fprintf(w, "\n### FTP through the NAT: ipfront's FTP helper against the kernel's\n\n")
	if len(r.natFTP) == 0 {
		fmt.Fprintf(w, "Not measured in this run (see \"Steps that failed\").\n")
		return
	}
	fmt.Fprintf(w, "vsftpd on %d of the servers (anonymous download, passive ports %s, active from port 20), curl in the client's\n", ftpServers, ftpPassive)
	fmt.Fprintf(w, "namespace from %s, both on core %d; the forwarder on core %d. ipfront: a NAT set on port 21 with helper = \"ftp\"\n", natClientIP, genCPU, dutCPU)
	fmt.Fprintf(w, "(busy_poll=true): the workers punt the control connections' payload to the slow path, which rewrites the 227 reply\n")
	fmt.Fprintf(w, "and installs the data connection's expectation. nftables: the DNAT map over the same %d servers and a `ct helper` object\n", ftpServers)
	fmt.Fprintf(w, "of type \"ftp\" assigned to the VIP's port 21 (nf_conntrack_ftp + nf_nat_ftp, built in). Passive: PASV, the 227\n")
	fmt.Fprintf(w, "reply used as it comes (`--disable-epsv --no-ftp-skip-pasv-ip`); active: PORT (`--ftp-port - --disable-eprt`), the\n")
	fmt.Fprintf(w, "server's data connection from port 20 leaves the DUT from the VIP. **Sessions/s**: %d curl processes at once, each\n", r.ftpWorkers)
	fmt.Fprintf(w, "running %d sessions one after another, every session a login of its own (own credentials: curl opens a new control\n", r.ftpSessions)
	fmt.Fprintf(w, "connection), one PASV or PORT, the download of a %d-byte file (size checked), QUIT. **Transfer**: one download of\n", ftpSmall)
	fmt.Fprintf(w, "%s (size checked), payload Mbit/s over the data connection's time.%s\n\n", ftpBytesOf(r), rateRoundsNote(r.natFTP))
	rateTable(w, r.natFTP)
}

// ftpBytesOf is the transfer size of the run, from its rows.
func ftpBytesOf(r *results) string {
	for _, x := range r.natFTP {
		if strings.Contains(x.Workload, "transfer") && x.Bytes > 0 {
			return human(float64(x.Bytes)) + " bytes"
		}
	}
	return "a large file"
}
