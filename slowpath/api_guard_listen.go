package slowpath

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// ErrAPIInUse is returned by Listen when another process serves the
// listen address: a second daemon on the same socket or port.
var ErrAPIInUse = errors.New("in use by another process (is another ipfront running?)")

// openListener opens cfg's listener with the connection limit and, when
// cfg names certificate files, TLS on top.
func openListener(cfg config.API, maxConns int) (net.Listener, error) {
	unix := strings.HasPrefix(cfg.Listen, "unix:")
	var tlsConf *tls.Config
	switch {
	case cfg.TLSCert != "" && unix:
		return nil, fmt.Errorf("tls_cert and tls_key are for TCP listeners, not %s", cfg.Listen)
	case cfg.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load tls_cert %s and tls_key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		// HTTP/1.1 only: the limits above are per connection, and one
		// HTTP/2 connection would multiplex many requests past them.
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	case !LoopbackListen(cfg.Listen):
		// Validation refuses this; a Spec built in code gets the same answer.
		return nil, fmt.Errorf("%s is reachable from other hosts: set tls_cert and tls_key so the token never travels in clear", cfg.Listen)
	}
	var ln net.Listener
	var err error
	if path, ok := strings.CutPrefix(cfg.Listen, "unix:"); ok {
		ln, err = listenUnix(path)
	} else {
		ln, err = net.Listen("tcp", cfg.Listen)
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fmt.Errorf("%s %w: %w", cfg.Listen, ErrAPIInUse, err)
		}
	}
	if err != nil {
		return nil, err
	}
	ln = newLimitListener(ln, maxConns, tlsConf == nil)
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	return ln, nil
}

// umaskMu serialises this package's umask changes. The umask is the
// process's: a file another goroutine creates during a bind gets mode bits
// no wider than 0600, which is only ever stricter.
var umaskMu sync.Mutex

// listenUnix binds a unix socket at path with mode 0600 from its creation:
// the umask excludes every other bit during bind, so no chmod follows and
// there is no moment in which others may connect.
//
// A file at path is replaced only if it is a socket nobody accepts on
// (left by a daemon that did not exit cleanly): a connect is the probe. A
// live socket means another daemon serves there, and Listen fails with
// ErrAPIInUse rather than unlinking it. The probe, unlink and bind run
// under an flock on path+".lock", held while the listener is open, so two
// daemons starting together cannot both find the socket dead and replace
// each other's. The lock file stays: unlinking a lock file reopens the
// race it closes.
func listenUnix(path string) (net.Listener, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("api socket lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s %w: %s.lock is held", path, ErrAPIInUse, path)
		}
		return nil, fmt.Errorf("lock %s.lock: %w", path, err)
	}
	ln, err := bindUnix(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &unixListener{UnixListener: ln, lock: lock}, nil
}

func bindUnix(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("%s %w: it accepts connections", path, ErrAPIInUse)
		case !errors.Is(err, syscall.ECONNREFUSED):
			// EAGAIN (a live listener's full backlog), EACCES, ...:
			// possibly alive, so it stays.
			return nil, fmt.Errorf("%s: cannot tell whether the socket is in use, so it stays: %w", path, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove dead socket: %w", err)
		}
	}
	umaskMu.Lock()
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	umaskMu.Unlock()
	if errors.Is(err, syscall.EADDRINUSE) {
		err = fmt.Errorf("%s %w: %w", path, ErrAPIInUse, err)
	}
	return ln, err
}

// unixListener releases the socket's lock after unlinking the socket.
type unixListener struct {
	*net.UnixListener
	lock *os.File
	once sync.Once
	err  error
}

func (l *unixListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		l.lock.Close()
	})
	return l.err
}

// limitListener accepts at most cap(slots) connections at once. One more
// is accepted and closed at once (with a 503 on plain HTTP) instead of
// being left in the kernel's backlog, so a client learns the API is busy
// rather than hanging.
type limitListener struct {
	net.Listener
	slots    chan struct{} // one element per open connection
	refusing chan struct{} // bounds goroutines closing refused connections
	plain    bool          // not TLS: a refusal can be an HTTP reply
}

func newLimitListener(ln net.Listener, n int, plain bool) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), refusing: make(chan struct{}, 8), plain: plain}
}

// Accept returns the next connection within the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refuse(c)
		}
	}
}

// busyReply is the whole HTTP answer to a connection over the limit.
var busyReply = func() string {
	body := `{"error": "too many connections to the ipfront API"}` + "\n"
	return fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"+
		"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

// refuse closes an accepted connection over the limit. On plain HTTP it
// first writes a 503 and, while few refusals are under way, reads what
// the client sent for a moment before closing: closing with unread data
// would reset the connection and could destroy the reply before the
// client reads it.
func (l *limitListener) refuse(c net.Conn) {
	if !l.plain {
		c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close() // a flood of connections: no goroutine each
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := io.WriteString(c, busyReply); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
