//go:build linux

package xsk

import "golang.org/x/sys/unix"

// SetBusyPoll applies b to the open socket s as Open does, on the calling
// thread (whose capabilities the kernel checks).
func SetBusyPoll(s *Socket, b BusyPoll) { s.setBusyPoll(b) }

// WakePending reports whether s's wake eventfd is readable: a Wake that no
// Wait has consumed yet.
func WakePending(s *Socket) bool {
	pfd := []unix.PollFd{{Fd: int32(s.wake.fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(pfd, 0)
	return n == 1
}
