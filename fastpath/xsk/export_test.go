//go:build linux

package xsk

// RxQueued returns how many received frames wait on s's RX ring, reading
// the kernel's producer index. Tests use it to wait until a burst has
// arrived before timing its drain.
func RxQueued(s *Socket) int { return int(s.rx.consAvail(s.rx.size)) }
