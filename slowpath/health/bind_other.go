//go:build !linux

package health

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

var errBindUnsupported = errors.New("binding to a device is not supported on " + runtime.GOOS)

// bindToDevice returns a net.Dialer.Control that fails every probe: only
// Linux has SO_BINDTODEVICE.
func bindToDevice(dev string) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return fmt.Errorf("bind to device %q: %w", dev, errBindUnsupported)
	}
}
