//go:build linux

package decap

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// AttachMode selects the XDP hook.
type AttachMode int

// Attach modes.
const (
	AttachAuto    AttachMode = iota // native, else generic
	AttachNative                    // in the driver
	AttachGeneric                   // the skb-based hook
)

// ParseAttachMode parses "auto", "native" or "generic".
func ParseAttachMode(s string) (AttachMode, error) {
	switch s {
	case "", "auto":
		return AttachAuto, nil
	case "native":
		return AttachNative, nil
	case "generic":
		return AttachGeneric, nil
	}
	return 0, fmt.Errorf("decap: unknown XDP mode %q (want auto, native or generic)", s)
}

// ErrOtherProgram is returned when the interface holds an XDP program that
// is not ipfront's decapsulation program: Attach does not replace it and
// Detach does not remove it.
var ErrOtherProgram = errors.New("decap: the interface has another XDP program")

// Attach loads the program for cfg and attaches it to interface ifname with
// a netlink attachment, which outlives this process; an ipfront decap
// program already there is replaced. It returns the hook used.
func Attach(ifname string, cfg Config, mode AttachMode) (AttachMode, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("decap: interface %s: %w", ifname, err)
	}
	if err := checkOwn(l); err != nil {
		return 0, err
	}
	p, err := Load(cfg)
	if err != nil {
		return 0, err
	}
	defer p.Close() // the attachment keeps the program and its map
	try := func(m AttachMode) error {
		flags := nl.XDP_FLAGS_DRV_MODE
		if m == AttachGeneric {
			flags = nl.XDP_FLAGS_SKB_MODE
		}
		// Another mode's program would stay beside this one: remove it.
		if err := netlink.LinkSetXdpFdWithFlags(l, -1, otherFlags(flags)); err != nil {
			return fmt.Errorf("decap: clear %s: %w", ifname, err)
		}
		if err := netlink.LinkSetXdpFdWithFlags(l, p.prog.FD(), flags); err != nil {
			return fmt.Errorf("decap: attach to %s (%s): %w", ifname, modeName(m), err)
		}
		return nil
	}
	switch mode {
	case AttachNative, AttachGeneric:
		return mode, try(mode)
	}
	errNative := try(AttachNative)
	if errNative == nil {
		return AttachNative, nil
	}
	if err := try(AttachGeneric); err != nil {
		return 0, errors.Join(errNative, err)
	}
	return AttachGeneric, nil
}

// otherFlags are the XDP flags of the hook flags does not name.
func otherFlags(flags int) int {
	if flags == nl.XDP_FLAGS_DRV_MODE {
		return nl.XDP_FLAGS_SKB_MODE
	}
	return nl.XDP_FLAGS_DRV_MODE
}

// String returns the mode's command-line name.
func (m AttachMode) String() string { return modeName(m) }

func modeName(m AttachMode) string {
	switch m {
	case AttachNative:
		return "native"
	case AttachGeneric:
		return "generic"
	}
	return "auto"
}

// attached returns the XDP program attached to l, if any.
func attached(l netlink.Link) (*ebpf.Program, error) {
	x := l.Attrs().Xdp
	if x == nil || !x.Attached || x.ProgId == 0 {
		return nil, nil
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId))
	if err != nil {
		return nil, fmt.Errorf("decap: XDP program %d of %s: %w", x.ProgId, l.Attrs().Name, err)
	}
	return p, nil
}

// checkOwn fails with ErrOtherProgram if l holds an XDP program that is not
// ours.
func checkOwn(l netlink.Link) error {
	p, err := attached(l)
	if err != nil || p == nil {
		return err
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return fmt.Errorf("decap: XDP program of %s: %w", l.Attrs().Name, err)
	}
	if info.Name != ProgramName {
		return fmt.Errorf("%w: %s holds %q", ErrOtherProgram, l.Attrs().Name, info.Name)
	}
	return nil
}

// Detach removes ipfront's decapsulation program from ifname. It reports
// false if there was none; another program is left alone (ErrOtherProgram).
func Detach(ifname string) (bool, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("decap: interface %s: %w", ifname, err)
	}
	p, err := attached(l)
	if err != nil || p == nil {
		return false, err
	}
	p.Close()
	if err := checkOwn(l); err != nil {
		return false, err
	}
	var errs []error
	for _, f := range []int{nl.XDP_FLAGS_DRV_MODE, nl.XDP_FLAGS_SKB_MODE} {
		errs = append(errs, netlink.LinkSetXdpFdWithFlags(l, -1, f))
	}
	if err := errors.Join(errs...); err != nil {
		return false, fmt.Errorf("decap: detach from %s: %w", ifname, err)
	}
	return true, nil
}

// Status returns the counters of the decapsulation program attached to
// ifname; ok is false if there is none.
func Status(ifname string) (c [NumCounters]uint64, ok bool, err error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return c, false, fmt.Errorf("decap: interface %s: %w", ifname, err)
	}
	if err := checkOwn(l); err != nil {
		return c, false, err
	}
	p, err := attached(l)
	if err != nil || p == nil {
		return c, false, err
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return c, false, fmt.Errorf("decap: program info: %w", err)
	}
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		mi, err := m.Info()
		if err == nil && mi.Type == ebpf.PerCPUArray && mi.MaxEntries == NumCounters {
			c, err = readCounters(m)
			m.Close()
			return c, err == nil, err
		}
		m.Close()
	}
	return c, false, fmt.Errorf("decap: %s: counter map not found", ifname)
}
