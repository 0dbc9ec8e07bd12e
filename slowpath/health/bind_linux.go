package health

import (
	"fmt"
	"os"
	"syscall"
)

// bindToDevice returns a net.Dialer.Control that binds the socket to the
// interface dev (SO_BINDTODEVICE) before it connects.
func bindToDevice(dev string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, dev)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to device %q: %w", dev, os.NewSyscallError("setsockopt", serr))
		}
		return nil
	}
}
