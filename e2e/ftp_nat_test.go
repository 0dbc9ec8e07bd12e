//go:build linux

package e2e

// FTP through a NAT target set with helper = "ftp" (issue 8): two real vsftpd
// servers behind one VIP per address family, real curl and lftp clients on a
// subnet of their own, ipfront two-armed between them and the servers'
// default gateway.
//
//	client  veth-c   203.0.113.2  2001:db8:c::2   routes the VIPs via ipfront
//	   |
//	ipfront veth-lbc 203.0.113.1  2001:db8:c::1   (clients' side)
//	        veth-lb  198.51.100.1 2001:db8:100::1 (servers' side, on the bridge)
//	   |
//	s1, s2  veth-sN  198.51.100.1N 2001:db8:100::1N, default routes via
//	        ipfront; vsftpd on port 21, passive ports 30000-30099, active
//	        connections from port 20
//
// The lab is internal/lab's segment rewired: the client's bridge port moves
// into ipfront's namespace as its client-side interface, and the servers drop
// the VIPs from lo and route by ipfront. ipfront's namespace does not forward
// (ip_forward off), so nothing crosses it but what ipfront translates.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

const (
	ftpLBClientIf = "veth-lbc"
	// ftpFileSize is what every session uploads and downloads: issue 8's
	// 5 MB of random bytes, a fresh file per session.
	ftpFileSize = 5 << 20
	// ftpSessions is the number of sessions per mode (active, passive)
	// and address family; ftpParallel of them run at once.
	ftpSessions = 20
	ftpParallel = 8
	// ftpSessionTimeout bounds one session (two 5 MB transfers on a
	// loaded two-core machine); a session that hangs fails with its
	// output instead of stalling the run.
	ftpSessionTimeout = 2 * time.Minute
)

var (
	ftpLB4     = netip.MustParseAddr("203.0.113.1")
	ftpLB6     = netip.MustParseAddr("2001:db8:c::1")
	ftpClient4 = netip.MustParseAddr("203.0.113.2")
	ftpClient6 = netip.MustParseAddr("2001:db8:c::2")
)

// ftpEnv is the FTP lab with vsftpd on both servers and ipfront running.
type ftpEnv struct {
	t       *testing.T
	lab     *lab.Lab
	servers []ftpServer
	work    string     // the client's files
	out     *lockedBuf // ipfront's log
	vip     [2]netip.Addr
}

// ftpServer is one vsftpd.
type ftpServer struct {
	host lab.Host
	dir  string // vsftpd.conf, vsftpd.log; root/up holds the uploads
}

func (s *ftpServer) upload(name string) string { return filepath.Join(s.dir, "root", "up", name) }

// lockedBuf is an io.Writer whose contents tests read while it is written.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// requireFTPTools skips, visibly, where the distribution's FTP programs are
// missing: .ci/run installs them.
func requireFTPTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{vsftpdPath(), "curl", "lftp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages vsftpd, curl, lftp; .ci/run installs them)", tool)
		}
	}
	if _, err := user.Lookup("ftp"); err != nil {
		t.Skip("no user ftp (the vsftpd package creates it)")
	}
	if _, err := os.Stat("/var/run/vsftpd/empty"); err != nil {
		t.Skip("no /var/run/vsftpd/empty (the vsftpd package creates it)")
	}
}

// vsftpdPath is vsftpd from $PATH, or where Debian puts it (/usr/sbin is
// not on every user's path).
func vsftpdPath() string {
	if p, err := exec.LookPath("vsftpd"); err == nil {
		return p
	}
	return "/usr/sbin/vsftpd"
}

// setupFTP builds the lab, starts vsftpd on both servers and ipfront with
// an IPv4 and an IPv6 NAT set with the FTP helper, and waits until a control
// connection to each VIP is greeted through ipfront.
func setupFTP(t *testing.T) *ftpEnv {
	t.Helper()
	requireEnv(t)
	requireFTPTools(t)
	l, err := lab.New(lab.UniquePrefix("e2e"), 2)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, l)
	e := &ftpEnv{t: t, lab: l, out: &lockedBuf{}, vip: [2]netip.Addr{l.VIP(false), l.VIP(true)}}
	if err := e.rewire(); err != nil {
		t.Fatalf("rewire the lab for NAT: %v", err)
	}
	e.work = privateDir(t, 0o755)

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	logTo := testLogTo(t)
	for _, h := range l.Servers() {
		s := ftpServer{host: h, dir: privateDir(t, 0o755)}
		if err := s.configure(); err != nil {
			t.Fatal(err)
		}
		p, err := l.StartProc(h.NS, "vsftpd-"+h.Role, logTo("vsftpd-"+h.Role), vsftpdPath(), filepath.Join(s.dir, "vsftpd.conf"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop(5 * time.Second) }) // vsftpd dies of SIGTERM: no clean exit to check
		if err := waitFTPGreeting(ctx, h.NS, netip.AddrPortFrom(h.IPv4, 21), p.Done()); err != nil {
			t.Fatalf("vsftpd on %s: %v", h.Role, err)
		}
		e.servers = append(e.servers, s)
	}

	cfg := e.writeConfig(t)
	ipf, err := l.StartProc(l.LB().NS, "ipfront", io.MultiWriter(logTo("ipfront"), e.out), ipfrontBin, "run", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ipf.Stop(10 * time.Second); err != nil {
			t.Errorf("ipfront did not exit cleanly on SIGTERM: %v", err)
		}
	})
	if err := lab.WaitReady(ctx, l.LB().NS, apiURL+"/v1/status", ipf.Done()); err != nil {
		t.Fatalf("ipfront not ready: %v", err)
	}
	logCountersAtCleanup(t, l.LB().NS, apiURL, true)
	t.Cleanup(func() {
		if body, err := lab.GetJSON(context.Background(), l.LB().NS, apiURL+"/v1/expectations"); err == nil {
			var compact bytes.Buffer
			_ = json.Compact(&compact, body)
			t.Logf("ipfront expectations: %s", compact.Bytes())
		}
	})
	// The first connections through ipfront wait for ARP/ND of the
	// client's address; greet both VIPs before the sessions start.
	for _, vip := range e.vip {
		if err := waitFTPGreeting(ctx, l.Client().NS, netip.AddrPortFrom(vip, 21), ipf.Done()); err != nil {
			t.Fatalf("control connection to %s through ipfront: %v", vip, err)
		}
	}
	return e
}

// privateDir makes a directory removed at cleanup, with mode (vsftpd drops
// to user ftp, which must reach its root through it).
func privateDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipfront-ftp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// rewire turns the DSR lab into the two-armed NAT lab drawn at the top of
// the file.
func (e *ftpEnv) rewire() error {
	l := e.lab
	lb, c := l.LB(), l.Client()
	v4, v6 := l.VIP(false), l.VIP(true)
	steps := []struct{ ns, cmds string }{
		{l.Switch(), fmt.Sprintf("link set p-%s nomaster\nlink set p-%s netns %s\n", c.Role, c.Role, lb.NS)},
		{lb.NS, fmt.Sprintf("link set p-%s name %s\naddr add %s/24 dev %s\naddr add %s/64 dev %s nodad\nlink set %s up\n",
			c.Role, ftpLBClientIf, ftpLB4, ftpLBClientIf, ftpLB6, ftpLBClientIf, ftpLBClientIf)},
		{c.NS, fmt.Sprintf("route del %s/32\nroute del %s/128\naddr flush dev %s\naddr add %s/24 dev %s\naddr add %s/64 dev %s nodad\n"+
			"route add %s/32 via %s\nroute add %s/128 via %s\n",
			v4, v6, c.Ifname, ftpClient4, c.Ifname, ftpClient6, c.Ifname, v4, ftpLB4, v6, ftpLB6)},
	}
	for _, s := range l.Servers() {
		steps = append(steps, struct{ ns, cmds string }{s.NS, fmt.Sprintf(
			"addr del %s/32 dev lo\naddr del %s/128 dev lo\nroute add default via %s\nroute add default via %s\n",
			v4, v6, lb.IPv4, lb.IPv6)})
	}
	for _, s := range steps {
		cmd := exec.Command("ip", "-n", s.ns, "-batch", "-")
		cmd.Stdin = strings.NewReader(s.cmds)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ip -n %s -batch: %v: %s\n%s", s.ns, err, bytes.TrimSpace(out), s.cmds)
		}
	}
	return nil
}

// configure writes the server's vsftpd.conf: anonymous upload and download
// in root/up, both address families, the passive range ipfront's set lists,
// active connections from port 20, and a log of every command and transfer
// with the client's address.
func (s *ftpServer) configure() error {
	ftp, err := user.Lookup("ftp")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(ftp.Uid)
	gid, _ := strconv.Atoi(ftp.Gid)
	root := filepath.Join(s.dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "up"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	if err := os.Chown(filepath.Join(root, "up"), uid, gid); err != nil {
		return err
	}
	conf := fmt.Sprintf(`listen=NO
listen_ipv6=YES
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=%s
write_enable=YES
anon_upload_enable=YES
anon_umask=022
local_enable=NO
pasv_enable=YES
pasv_min_port=30000
pasv_max_port=30099
port_enable=YES
connect_from_port_20=YES
port_promiscuous=NO
xferlog_enable=YES
dual_log_enable=YES
xferlog_file=%s
vsftpd_log_file=%s
log_ftp_protocol=YES
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
max_clients=200
max_per_ip=200
ftpd_banner=ipfront e2e %s
`, root, filepath.Join(s.dir, "xferlog"), filepath.Join(s.dir, "vsftpd.log"), s.host.Role)
	return os.WriteFile(filepath.Join(s.dir, "vsftpd.conf"), []byte(conf), 0o644)
}

// log returns the server's vsftpd log.
func (s *ftpServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "vsftpd.log"))
	return string(b)
}

// waitFTPGreeting connects from ns to addr until an FTP server greets with
// 220, ctx ends or exited is closed.
func waitFTPGreeting(ctx context.Context, ns string, addr netip.AddrPort, exited <-chan struct{}) error {
	var last error
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := lab.DialContext(dctx, ns, "tcp", addr.String())
		cancel()
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

// writeConfig writes ipfront's configuration: configs/ftp-nat.toml's sets
// on the lab's interfaces and addresses.
func (e *ftpEnv) writeConfig(t *testing.T) string {
	var b strings.Builder
	b.WriteString(dataplaneTOML([]string{ftpLBClientIf, lab.LBIfname}, 65536))
	for i, vip := range e.vip {
		fmt.Fprintf(&b, `
[[target_set]]
name = "ftp%d"
address = %q
protocols = ["tcp"]
ports = ["21"]
forwarding = "nat"
helper = "ftp"
passive_ports = ["30000-30099"]
expect_timeout = "60s"
delete_age = "2m"
`, 4+2*i, vip)
		for _, s := range e.servers {
			fmt.Fprintf(&b, "  [[target_set.server]]\n  name = %q\n  address = %q\n", s.host.Role, s.host.Addr(vip.Is6()))
		}
	}
	return writeTempConfig(t, "ipfront.toml", b.String())
}

// ftpSession is one FTP login: upload a fresh random file, download it
// again, quit.
type ftpSession struct {
	name   string // the file's name on the server, unique
	tool   string // "curl" or "lftp"
	active bool
	v6     bool
}

func (s ftpSession) String() string {
	mode := "passive"
	if s.active {
		mode = "active"
	}
	return fmt.Sprintf("%s %s %s", s.name, s.tool, mode)
}

// ftpResult is what a session left behind.
type ftpResult struct {
	s      ftpSession
	server int // index of the server that holds the upload, -1 if none
	err    error
}

// command returns the client's command line for s, from the client's
// namespace: curl with both transfers on one control connection (curl reuses
// it for the second URL), or one lftp script. The IPv4 forms are forced to
// PORT and PASV, so that the 227 reply (the one ipfront rewrites) is used
// as it comes: curl ignores the reply's address unless told not to, lftp is
// told not to "fix" it.
func (e *ftpEnv) command(s ftpSession, src, dst string) []string {
	vip := e.vip[0]
	host := vip.String()
	if s.v6 {
		vip = e.vip[1]
		host = "[" + vip.String() + "]"
	}
	url := "ftp://" + host + "/up/" + s.name
	if s.tool == "curl" {
		opts := []string{"-sS", "--connect-timeout", "10", "--max-time", "100"}
		switch {
		case s.active && !s.v6:
			opts = append(opts, "--ftp-port", "-", "--disable-eprt") // PORT
		case s.active:
			// EPRT. The client's address given, not "-" (the control
			// connection's local address): curl 7.88 now and then fails
			// that lookup on IPv6 ("sa_addr inet_ntop() failed with
			// errno 97") before it sends anything.
			opts = append(opts, "--ftp-port", ftpClient6.String())
		case !s.v6:
			opts = append(opts, "--disable-epsv", "--no-ftp-skip-pasv-ip") // PASV, 227
		default:
			opts = append(opts, "--no-ftp-skip-pasv-ip") // EPSV, 229
		}
		args := append([]string{"curl"}, opts...)
		args = append(args, "-T", src, url, "--next")
		args = append(args, opts...)
		return append(args, "-o", dst, url)
	}
	passive := "on"
	if s.active {
		passive = "off"
	}
	script := fmt.Sprintf("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 30; set ftp:passive-mode %s; "+
		"set ftp:prefer-epsv no; set ftp:fix-pasv-address no; set ftp:ignore-pasv-address no; "+
		"open -u anonymous, ftp://%s; put %s -o up/%s; get up/%s -o %s", passive, host, src, s.name, s.name, dst)
	return []string{"lftp", "-c", script}
}

// run runs one session and checks what it leaves: the downloaded copy
// matches the upload byte for byte (by SHA-256), exactly one server holds
// the upload, intact, and that server's log shows the upload and the
// download from the client's real address in one login process (so the
// control connection and both data connections reached it).
func (e *ftpEnv) run(s ftpSession) ftpResult {
	r := ftpResult{s: s, server: -1}
	src := filepath.Join(e.work, s.name+".src")
	dst := filepath.Join(e.work, s.name+".dst")
	defer os.Remove(src)
	defer os.Remove(dst)
	data := make([]byte, ftpFileSize)
	if _, err := rand.Read(data); err != nil {
		r.err = err
		return r
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		r.err = err
		return r
	}
	want := sha256.Sum256(data)
	ctx, cancel := context.WithTimeout(context.Background(), ftpSessionTimeout)
	defer cancel()
	cmd := e.lab.CommandContext(ctx, e.lab.Client().NS, e.command(s, src, dst)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		r.err = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args[3:], " "), err, out.Bytes())
		return r
	}
	if got, err := fileSHA(dst); err != nil || got != want {
		r.err = fmt.Errorf("downloaded copy: sha256 %x (%v), want %x", got, err, want)
		return r
	}
	for i := range e.servers {
		got, err := fileSHA(e.servers[i].upload(s.name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil || got != want {
			r.err = fmt.Errorf("upload on %s: sha256 %x (%v), want %x", e.servers[i].host.Role, got, err, want)
			return r
		}
		if r.server >= 0 {
			r.err = fmt.Errorf("the upload is on both servers")
			return r
		}
		r.server = i
	}
	if r.server < 0 {
		r.err = errors.New("no server holds the upload")
		return r
	}
	os.Remove(e.servers[r.server].upload(s.name))
	client := "::ffff:" + ftpClient4.String()
	if s.v6 {
		client = ftpClient6.String()
	}
	r.err = e.checkServerLog(r.server, s.name, client)
	return r
}

// checkServerLog finds the upload and the download of name in server i's
// log, from client, in one login process, and nothing about name in the
// other server's.
func (e *ftpEnv) checkServerLog(i int, name, client string) error {
	re := regexp.MustCompile(`\[pid (\d+)\] \[ftp\] OK (UPLOAD|DOWNLOAD): Client "([^"]*)", "/up/` + regexp.QuoteMeta(name) + `"`)
	// vsftpd writes the line as a transfer ends, before its reply; wait
	// for it rather than assume it is on disk.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := map[string]string{}
		var from []string
		for _, m := range re.FindAllStringSubmatch(e.servers[i].log(), -1) {
			pids[m[2]] = m[1]
			from = append(from, m[3])
		}
		if len(pids) == 2 {
			if pids["UPLOAD"] != pids["DOWNLOAD"] {
				return fmt.Errorf("%s: upload by process %s, download by %s: two logins", e.servers[i].host.Role, pids["UPLOAD"], pids["DOWNLOAD"])
			}
			for _, f := range from {
				if f != client {
					return fmt.Errorf("%s logged client %q, want the client's real address %q", e.servers[i].host.Role, f, client)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s's log lacks the upload or download of %s:\n%s", e.servers[i].host.Role, name, e.servers[i].log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for j := range e.servers {
		if j != i && strings.Contains(e.servers[j].log(), "/up/"+name) {
			return fmt.Errorf("%s's log mentions %s too", e.servers[j].host.Role, name)
		}
	}
	return nil
}

func fileSHA(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// runSessions runs sessions, ftpParallel at a time, and fails the test for
// each that failed. It returns how many each server served.
func (e *ftpEnv) runSessions(sessions []ftpSession) []int {
	results := make([]ftpResult, len(sessions))
	sem := make(chan struct{}, ftpParallel)
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = e.run(s)
		}()
	}
	wg.Wait()
	per := make([]int, len(e.servers))
	for _, r := range results {
		if r.err != nil {
			e.t.Errorf("session %s: %v", r.s, r.err)
			continue
		}
		per[r.server]++
	}
	return per
}

// sessions lists ftpSessions active and ftpSessions passive sessions of one
// family, half with curl and half with lftp.
func sessions(v6 bool) []ftpSession {
	fam := "v4"
	if v6 {
		fam = "v6"
	}
	var out []ftpSession
	for i := range 2 * ftpSessions {
		s := ftpSession{name: fmt.Sprintf("%s-%02d.bin", fam, i), tool: "curl", active: i%2 == 0, v6: v6}
		if i%4 >= 2 {
			s.tool = "lftp"
		}
		out = append(out, s)
	}
	return out
}

// expectations reads GET /v1/expectations.
func (e *ftpEnv) expectations() v1.Expectations {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := lab.GetJSON(ctx, e.lab.LB().NS, apiURL+"/v1/expectations")
	if err != nil {
		e.t.Fatal(err)
	}
	var x v1.Expectations
	if err := json.Unmarshal(body, &x); err != nil {
		e.t.Fatal(err)
	}
	return x
}

// TestFTPNAT runs issue 8's FTP sessions through ipfront: over IPv4 20
// active (PORT) and 20 passive (PASV, whose 227 reply ipfront rewrites)
// sessions, over IPv6 20 active (EPRT) and 20 passive (EPSV), each with
// curl or lftp, each uploading and downloading 5 MB of random bytes; then a
// bounce attempt and a privileged port, which are refused and counted.
func TestFTPNAT(t *testing.T) {
	e := setupFTP(t)
	served := make([]int, len(e.servers))
	for _, v6 := range []bool{false, true} {
		name := "IPv4"
		if v6 {
			name = "IPv6"
		}
		t.Run(name, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			before := e.expectations().Helper
			per := e.runSessions(sessions(v6))
			for i, n := range per {
				served[i] += n
			}
			t.Logf("sessions per server: %v", per)
			after := e.expectations().Helper
			// Every transfer announced its data connection: two per session.
			d := func(verb string) uint64 { return after.Commands[verb] - before.Commands[verb] }
			active, passive := d("PORT")+d("EPRT"), d("227")+d("229")
			if t.Failed() {
				return
			}
			if active < 2*ftpSessions || passive < 2*ftpSessions {
				t.Errorf("helper parsed %d PORT/EPRT and %d 227/229 lines, want at least %d each", active, passive, 2*ftpSessions)
			}
			if v6 && (d("EPRT") < 2*ftpSessions || d("229") < 2*ftpSessions) {
				t.Errorf("over IPv6: %d EPRT, %d 229, want at least %d each", d("EPRT"), d("229"), 2*ftpSessions)
			}
			if !v6 && (d("PORT") < 2*ftpSessions || after.Rewrites-before.Rewrites < 2*ftpSessions) {
				t.Errorf("over IPv4: %d PORT, %d 227 rewrites, want at least %d each", d("PORT"), after.Rewrites-before.Rewrites,
					2*ftpSessions)
			}
			if n := after.ExpectationsInstalled - before.ExpectationsInstalled; n < 4*ftpSessions {
				t.Errorf("%d expectations installed, want at least %d", n, 4*ftpSessions)
			}
			if n := after.ExpectationsUsed - before.ExpectationsUsed; n < 4*ftpSessions {
				t.Errorf("%d data connections admitted by expectations, want at least %d", n, 4*ftpSessions)
			}
			for reason, n := range after.Refused {
				if n != before.Refused[reason] {
					t.Errorf("helper refused %d lines (%s) of real clients", n-before.Refused[reason], reason)
				}
			}
		})
	}
	for i, n := range served {
		if n == 0 {
			t.Errorf("server %s served no session of %d: the sessions should spread over both", e.servers[i].host.Role, 4*ftpSessions)
		}
	}
	t.Run("bounce", func(t *testing.T) {
		e.t = t
		testFTPBounce(e)
	})
}

// testFTPBounce logs in and sends a PORT naming a third party and a PORT
// naming the client's own address with port 25: both are refused (the
// server answers 500 to what reaches it), counted, logged, and nothing is
// expected for them; the server never sees the third party's address in a
// PORT command.
func testFTPBounce(e *ftpEnv) {
	t := e.t
	before := e.expectations().Helper
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := lab.DialContext(ctx, e.lab.Client().NS, "tcp", netip.AddrPortFrom(e.vip[0], 21).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	rd := bufio.NewReader(c)
	reply := func(cmd string) string {
		t.Helper()
		if cmd != "" {
			if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reply to %q: %v", cmd, err)
		}
		return strings.TrimSpace(line)
	}
	if r := reply(""); !strings.HasPrefix(r, "220") {
		t.Fatalf("greeting %q", r)
	}
	if r := reply("USER anonymous"); !strings.HasPrefix(r, "230") {
		t.Fatalf("USER anonymous: %q", r)
	}
	third := "PORT 198,51,100,99,117,48" // 198.51.100.99:30000, not the client
	if r := reply(third); !strings.HasPrefix(r, "5") {
		t.Errorf("%s answered %q, want a 5xx refusal", third, r)
	}
	low := "PORT " + strings.ReplaceAll(ftpClient4.String(), ".", ",") + ",0,25" // the client's own port 25
	if r := reply(low); !strings.HasPrefix(r, "5") {
		t.Errorf("%s answered %q, want a 5xx refusal", low, r)
	}
	reply("QUIT")

	after := e.expectations()
	if n := after.Helper.Refused["bounce"] - before.Refused["bounce"]; n != 1 {
		t.Errorf("bounces refused: %d, want 1", n)
	}
	if n := after.Helper.Refused["low_port"] - before.Refused["low_port"]; n != 1 {
		t.Errorf("low ports refused: %d, want 1", n)
	}
	if n := after.Helper.ExpectationsInstalled - before.ExpectationsInstalled; n != 0 {
		t.Errorf("%d expectations installed for refused commands, want none", n)
	}
	for _, x := range after.Expectations {
		if (x.Client != ftpClient4 && x.Client != ftpClient6) || x.Port < 1024 {
			t.Errorf("expectation %+v: only the clients' own addresses and ports >= 1024 may be expected", x)
		}
	}
	if !strings.Contains(e.out.String(), "FTP bounce refused") {
		t.Errorf("ipfront's log has no line about the refused bounce")
	}
	for _, s := range e.servers {
		if strings.Contains(s.log(), "\"PORT 198,51,100,99") {
			t.Errorf("%s received the bounce's PORT command:\n%s", s.host.Role, s.log())
		}
	}
	// ipfront ctl shows the same counters.
	out, err := e.lab.Exec(e.lab.LB().NS, ipfrontBin, "ctl", "--api", apiListen, "expectations")
	if err != nil || !strings.Contains(out, "bounce "+strconv.FormatUint(after.Helper.Refused["bounce"], 10)) {
		t.Errorf("ipfront ctl expectations: %v\n%s", err, out)
	}
}
