package ftp

import (
	"net/netip"
	"testing"
)

func TestParsePORT(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		port uint16
		err  error
	}{
		{"203,0,113,7,117,48", "203.0.113.7", 30000, nil},
		{"203,0,113,7,4,1  ", "203.0.113.7", 1025, nil},
		{"0,0,0,0,0,0", "0.0.0.0", 0, nil},
		{"255,255,255,255,255,255", "255.255.255.255", 65535, nil},
		{"010,0,113,7,4,1", "10.0.113.7", 1025, nil}, // leading zeros are decimal, as servers read them
		{"256,0,113,7,4,1", "", 0, errMalformed},
		{"203,0,113,7,4,256", "", 0, errMalformed},
		{"203,0,113,7,4", "", 0, errMalformed},
		{"203,0,113,7,4,1,9", "", 0, errMalformed},
		{"203,0,113,7,4,1x", "", 0, errMalformed},
		{"203,0,113,-7,4,1", "", 0, errMalformed},
		{"203, 0,113,7,4,1", "", 0, errMalformed},
		{"2030,0,113,7,4,1", "", 0, errMalformed},
		{"", "", 0, errMalformed},
		{"99999999999999999999,0,0,0,0,0", "", 0, errMalformed},
	} {
		addr, port, err := parsePORT([]byte(tc.in))
		if err != tc.err || (err == nil && (addr.String() != tc.addr || port != tc.port)) {
			t.Errorf("parsePORT(%q) = %v, %d, %v, want %s, %d, %v", tc.in, addr, port, err, tc.addr, tc.port, tc.err)
		}
	}
}

func TestParseEPRT(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		port uint16
		err  error
	}{
		{"|1|203.0.113.7|30000|", "203.0.113.7", 30000, nil},
		{"|2|2001:db8::7|30000|", "2001:db8::7", 30000, nil},
		{"!2!2001:db8::7!1025!  ", "2001:db8::7", 1025, nil},
		{"|1|2001:db8::7|30000|", "", 0, errMalformed}, // family says IPv4
		{"|2|203.0.113.7|30000|", "", 0, errMalformed},
		{"|3|203.0.113.7|30000|", "", 0, errMalformed},
		{"|1|203.0.113.7|65536|", "", 0, errMalformed},
		{"|1|203.0.113.7||", "", 0, errMalformed},
		{"|1|203.0.113.7|30000", "", 0, errMalformed},
		{"|1|203.0.113.7|30000|x", "", 0, errMalformed},
		{"|2|fe80::1%eth0|30000|", "", 0, errMalformed},
		{"|1|203.0.113.07|30000|", "", 0, errMalformed},
		{"1|1|203.0.113.7|30000|", "", 0, errMalformed},
		{"|1|203.0.113.7|+3000|", "", 0, errMalformed},
		{"", "", 0, errMalformed},
	} {
		addr, port, err := parseEPRT([]byte(tc.in))
		if err != tc.err || (err == nil && (addr.String() != tc.addr || port != tc.port)) {
			t.Errorf("parseEPRT(%q) = %v, %d, %v, want %s, %d, %v", tc.in, addr, port, err, tc.addr, tc.port, tc.err)
		}
	}
}

func TestReply227(t *testing.T) {
	for _, tc := range []struct {
		in         string
		addr       string
		port       uint16
		start, end int
		err        error
	}{
		{"227 Entering Passive Mode (198,51,100,11,117,48).\r\n", "198.51.100.11", 30000, 27, 40, nil},
		{"227 Entering Passive Mode 198,51,100,11,117,48\r\n", "198.51.100.11", 30000, 26, 39, nil},
		{"227 =198,51,100,11,117,48\n", "198.51.100.11", 30000, 5, 18, nil},
		{"227 Entering Passive Mode (198,51,100,11,117,48,1).\r\n", "", 0, 0, 0, errMalformed},
		{"227 Entering Passive Mode (198,51,100,11,117,489).\r\n", "", 0, 0, 0, errMalformed},
		{"227 Entering Passive Mode (198,51,100,11,117).\r\n", "", 0, 0, 0, errMalformed},
		{"227 Entering Passive Mode ().\r\n", "", 0, 0, 0, errMalformed},
		{"227-Entering Passive Mode (198,51,100,11,117,48).\r\n", "", 0, 0, 0, errMalformed},
	} {
		addr, port, start, end, err := reply227([]byte(tc.in))
		if err != tc.err || (err == nil && (addr.String() != tc.addr || port != tc.port || start != tc.start || end != tc.end)) {
			t.Errorf("reply227(%q) = %v, %d, [%d,%d), %v, want %s, %d, [%d,%d), %v", tc.in, addr, port, start, end, err,
				tc.addr, tc.port, tc.start, tc.end, tc.err)
		}
	}
}

func TestReply229(t *testing.T) {
	for _, tc := range []struct {
		in   string
		port uint16
		err  error
	}{
		{"229 Entering Extended Passive Mode (|||30000|)\r\n", 30000, nil},
		{"229 Entering Extended Passive Mode (!!!1025!).\r\n", 1025, nil},
		{"229 Entering Extended Passive Mode (|||65536|)\r\n", 0, errMalformed},
		{"229 Entering Extended Passive Mode (||30000|)\r\n", 0, errMalformed},
		{"229 Entering Extended Passive Mode (|!|30000|)\r\n", 0, errMalformed},
		{"229 Entering Extended Passive Mode (|||30000|\r\n", 0, errMalformed},
		{"229 Entering Extended Passive Mode (111300001)\r\n", 0, errMalformed},
		{"229 Entering Extended Passive Mode |||30000|\r\n", 0, errMalformed},
		{"229 (|||", 0, errMalformed},
	} {
		port, err := reply229([]byte(tc.in))
		if err != tc.err || port != tc.port {
			t.Errorf("reply229(%q) = %d, %v, want %d, %v", tc.in, port, err, tc.port, tc.err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want verb
	}{
		{"PORT 1,2,3,4,5,6\r\n", verbPORT},
		{"port 1,2,3,4,5,6\r\n", verbPORT},
		{"  PoRt 1,2,3,4,5,6\r\n", verbPORT},
		{"EPRT |1|1.2.3.4|5|\r\n", verbEPRT},
		{"eprt |1|1.2.3.4|5|\n", verbEPRT},
		{"PORTX 1,2,3,4,5,6\r\n", verbBad},
		{"PORT\t1,2,3,4,5,6\r\n", verbBad},
		{"PASV\r\n", verbOther},
		{"POR\r\n", verbOther},
		{"RETR PORT 1,2,3,4,5,6\r\n", verbOther},
		{"                 PORT 1,2,3,4,5,6\r\n", verbOther}, // 17 spaces: no server takes that as a verb
	} {
		if got := classify([]byte(tc.in)); got != tc.want {
			t.Errorf("classify(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestVIPText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.10", "192,0,2,10"}, {"0.0.0.0", "0,0,0,0"}, {"255.100.9.10", "255,100,9,10"},
	} {
		if got := string(vipText(netip.MustParseAddr(tc.in))); got != tc.want {
			t.Errorf("vipText(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
