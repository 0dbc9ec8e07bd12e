package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// sdNotify sends state to the service manager over $NOTIFY_SOCKET, the
// sd_notify(3) protocol, which is one datagram of newline-separated
// VAR=value lines on a unix socket: "READY=1" once the daemon serves (the
// unit is Type=notify, so systemctl start returns only then and units
// ordered after ipfront start against a working load balancer),
// "STATUS=..." for systemctl status, "STOPPING=1" when it begins to shut
// down. Without $NOTIFY_SOCKET (not under systemd) it does nothing. A name
// starting with '@' is an abstract socket (Go's convention matches
// systemd's). Errors are returned for the log only: a manager that does
// not listen must not stop the load balancer.
func sdNotify(state ...string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] != '/' && path[0] != '@' {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither a path nor an abstract socket", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(state, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
