//go:build linux

package main

import "testing"

// TestClassifyPerf: perf script samples land in the accounting items a reader
// of the overhead section expects: the DUT process told by pid (whatever its
// command name), idle polling by its function, kernel work by its call chain.
func TestClassifyPerf(t *testing.T) {
	const script = `napi/veth-lb-12 40/40 [001] 
	ffffffff81000001 htab_map_hash
	ffffffffa0000001 bpf_prog_0123456789abcdef_ipfront_steer
	ffffffff81000002 veth_xdp_rcv_skb
	ffffffff81000003 veth_poll

napi/veth-lb-12 40/40 [001] 
	ffffffff81000004 __pi_memcpy
	ffffffff81000005 __xsk_rcv
	ffffffff81000006 xdp_do_redirect
	ffffffff81000003 veth_poll

ipfront_base 7/9 [001] 
	          4a0001 github.com/ipfront/ipfront/fastpath/assoc.(*Shard).Find
	          4a0002 github.com/ipfront/ipfront/fastpath.(*Engine).Process
	          4a0003 github.com/ipfront/ipfront/fastpath.(*Worker).forward

ipfront_base 7/9 [001] 
	          4a0004 runtime.nanotime1
	          4a0005 github.com/ipfront/ipfront/fastpath.(*Worker).housekeeping
	          4a0006 github.com/ipfront/ipfront/fastpath.(*Worker).idleIteration

ipfront_base 7/9 [001] 
	    7ffd00000001 __vdso_clock_gettime
	          4a0009 time.Since
	          4a0005 github.com/ipfront/ipfront/fastpath.(*Worker).housekeeping
	          4a000a github.com/ipfront/ipfront/fastpath.(*Worker).iterate

ipfront_base 7/9 [001] 
	ffffffff81000007 __xsk_generic_xmit
	ffffffff81000008 xsk_sendmsg
	ffffffff81000009 __x64_sys_sendto
	ffffffff8100000a do_syscall_64
	          4a0007 github.com/ipfront/ipfront/fastpath/xsk.(*Socket).Transmit

ipfront_base 7/11 [000] 
	          4a0008 encoding/json.(*encodeState).marshal

xskfwd 8/8 [001] 
	          4b0001 github.com/ipfront/ipfront/fastpath/xsk.(*Socket).Recycle
	          4b0002 main.(*forwarder).idle

napi/p-lb-3 41/41 [001] 
	ffffffff8100000b br_handle_frame

swapper 0/0 [000] 
	ffffffff8100000c default_idle

other 99/99 [001] 
	          500001 main.main
`
	got, _ := classifyPerf(script, 2, 7)
	want := map[string][2]int{ // item -> samples on core 0, core 1
		"steer":     {0, 1},
		"xskrcv":    {0, 1},
		"u-engine":  {0, 1},
		"u-idle":    {0, 1},
		"txkick":    {0, 1},
		"u-other":   {1, 0},
		"egress":    {0, 1},
		"idle":      {1, 0},
		"other":     {0, 2}, // xskfwd is not the DUT here (pid 7 is), and pid 99
		"u-adapter": {0, 0},
		"u-worker":  {0, 1}, // the vDSO's clock read is the caller's, in user space
		"ksys":      {0, 0},
	}
	for item, w := range want {
		if s := got[item]; s[0] != w[0] || s[1] != w[1] {
			t.Errorf("classifyPerf: item %s = %v, want %v", item, s, w)
		}
	}
	// With xskfwd as the DUT, its idle function is idle polling.
	got, _ = classifyPerf(script, 2, 8)
	if s := got["u-idle"]; s[1] != 1 {
		t.Errorf("classifyPerf with xskfwd the DUT: u-idle = %v, want [0 1]", s)
	}
}
