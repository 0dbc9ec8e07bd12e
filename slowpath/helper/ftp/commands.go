package ftp

import (
	"bytes"
	"errors"
	"net/netip"
)

// Why a line was refused. Each is counted and logged by the caller.
var (
	// errMalformed: a PORT, EPRT, 227 or 229 line whose fields do not
	// parse (non-numeric, out of range, missing, extra).
	errMalformed = errors.New("malformed")
	// errLowPort: a data port below 1024.
	errLowPort = errors.New("port below 1024")
	// errFamily: an address family the connection cannot use (EPRT |1|
	// on an IPv6 control connection, a 227 for an IPv6 VIP).
	errFamily = errors.New("address family does not match the connection")
)

// MinDataPort is the lowest data port an expectation is installed for: a
// port below it is a privileged service's, never an FTP data port.
const MinDataPort = 1024

// verb classifies a client line for the helper.
type verb uint8

const (
	verbOther verb = iota // not PORT or EPRT
	verbPORT
	verbEPRT
	verbBad // starts like PORT or EPRT (PORTX, "PORT\t...") but is neither
)

// trimEOL strips the line terminator: "\r\n", or a bare "\n" that some
// clients send.
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// maxLeadingSpaces is how many spaces before a verb still make a line a
// candidate. No server we know accepts any, but the helper refuses a
// superset of what a server might act on.
const maxLeadingSpaces = 16

// leadingSpaces returns how many spaces line starts with.
func leadingSpaces(line []byte) int {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	return i
}

// upper folds an ASCII letter to upper case.
func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// prefixFold reports whether the first min(len(b), len(word)) bytes of b
// equal word's, ignoring ASCII case.
func prefixFold(b []byte, word string) bool {
	for i := 0; i < len(b) && i < len(word); i++ {
		if upper(b[i]) != word[i] {
			return false
		}
	}
	return true
}

// clientCandidate reports whether a client line whose first bytes are b
// may still turn out to be a PORT or EPRT command (the helper then holds it
// back until it is complete, so that it can refuse it).
func clientCandidate(b []byte) bool {
	sp := leadingSpaces(b)
	if sp > maxLeadingSpaces {
		return false
	}
	rest := b[sp:]
	return prefixFold(rest, "PORT") || prefixFold(rest, "EPRT")
}

// serverCandidate reports whether a server line whose first bytes are b
// may still turn out to be a 227 reply (held back so its address can be
// rewritten).
func serverCandidate(b []byte) bool { return prefixFold(b, "227 ") }

// verbSpan returns where a client line's verb starts and ends.
func verbSpan(line []byte) (start, end int) {
	start = leadingSpaces(line)
	end = start
	for end < len(line) && line[end] != ' ' && line[end] != '\r' && line[end] != '\n' {
		end++
	}
	return start, end
}

// classify says which command a complete client line is.
func classify(line []byte) verb {
	start, end := verbSpan(line)
	if start > maxLeadingSpaces || end-start < 4 {
		return verbOther
	}
	v := line[start:end]
	var kind verb
	switch {
	case prefixFold(v[:4], "PORT"):
		kind = verbPORT
	case prefixFold(v[:4], "EPRT"):
		kind = verbEPRT
	default:
		return verbOther
	}
	if len(v) != 4 {
		return verbBad
	}
	return kind
}

// args returns the arguments of a client line: what follows the verb and
// the spaces after it, without the line terminator.
func args(line []byte) []byte {
	_, end := verbSpan(line)
	a := trimEOL(line[end:])
	return a[leadingSpaces(a):]
}

// number parses a decimal number of at most maxDigits digits at the start of
// b, returning it and the bytes consumed (0 if b does not start with a
// digit or has too many).
func number(b []byte, maxDigits int) (int, int) {
	n, i := 0, 0
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		if i == maxDigits {
			return 0, 0
		}
		n = n*10 + int(b[i]-'0')
		i++
	}
	return n, i
}

// hostPort parses "h1,h2,h3,h4,p1,p2" (RFC 959) at the start of b. It
// returns the address, the port, the length of the address part ("h1,h2,h3,h4")
// and the length of the whole.
func hostPort(b []byte) (addr netip.Addr, port uint16, addrLen, n int, err error) {
	var v [6]int
	for k := range 6 {
		if k > 0 {
			if n >= len(b) || b[n] != ',' {
				return addr, 0, 0, 0, errMalformed
			}
			n++
			if k == 4 {
				addrLen = n - 1
			}
		}
		x, used := number(b[n:], 3)
		if used == 0 || x > 255 {
			return addr, 0, 0, 0, errMalformed
		}
		v[k] = x
		n += used
	}
	addr = netip.AddrFrom4([4]byte{byte(v[0]), byte(v[1]), byte(v[2]), byte(v[3])})
	return addr, uint16(v[4]<<8 | v[5]), addrLen, n, nil
}

// parsePORT parses a PORT command's arguments, "h1,h2,h3,h4,p1,p2", with
// nothing after them but spaces.
func parsePORT(a []byte) (netip.Addr, uint16, error) {
	addr, port, _, n, err := hostPort(a)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	if len(bytes.TrimRight(a[n:], " ")) != 0 {
		return netip.Addr{}, 0, errMalformed
	}
	return addr, port, nil
}

// parseEPRT parses an EPRT command's arguments (RFC 2428):
// "<d><af><d><address><d><port><d>", d any printable ASCII character but
// a digit, af 1 (IPv4, dotted) or 2 (IPv6, RFC 4291 text without a zone).
func parseEPRT(a []byte) (netip.Addr, uint16, error) {
	a = bytes.TrimRight(a, " ")
	if len(a) < 2 || a[0] < 33 || a[0] > 126 || ('0' <= a[0] && a[0] <= '9') {
		return netip.Addr{}, 0, errMalformed
	}
	d := a[0]
	f := bytes.Split(a[1:], []byte{d})
	// af, address, port, and the empty remainder after the last delimiter.
	if len(f) != 4 || len(f[3]) != 0 {
		return netip.Addr{}, 0, errMalformed
	}
	var want4 bool
	switch string(f[0]) {
	case "1":
		want4 = true
	case "2":
	default:
		return netip.Addr{}, 0, errMalformed
	}
	addr, err := netip.ParseAddr(string(f[1]))
	if err != nil || addr.Zone() != "" || addr.Is4() != want4 {
		return netip.Addr{}, 0, errMalformed
	}
	p, used := number(f[2], 5)
	if used == 0 || used != len(f[2]) || p > 65535 {
		return netip.Addr{}, 0, errMalformed
	}
	return addr, uint16(p), nil
}

// reply227 finds the host-port of a "227 " reply (RFC 959; RFC 1123
// 4.1.2.6: a client scans for the first digit, since servers word the text
// and place the parentheses differently). It returns the address, the port
// and the span [start, end) of the four address numbers, the only bytes a
// rewrite replaces. What follows the six numbers must not extend them (a
// digit or a comma).
func reply227(line []byte) (addr netip.Addr, port uint16, start, end int, err error) {
	l := trimEOL(line)
	if !bytes.HasPrefix(l, []byte("227 ")) {
		return addr, 0, 0, 0, errMalformed
	}
	start = 4
	for start < len(l) && (l[start] < '0' || l[start] > '9') {
		start++
	}
	addr, port, addrLen, n, err := hostPort(l[start:])
	if err != nil {
		return addr, 0, 0, 0, err
	}
	if rest := l[start+n:]; len(rest) > 0 && (rest[0] == ',' || ('0' <= rest[0] && rest[0] <= '9')) {
		return netip.Addr{}, 0, 0, 0, errMalformed
	}
	return addr, port, start, start + addrLen, nil
}

// reply229 finds the port of a "229 " reply (RFC 2428):
// "(<d><d><d><port><d>)", the address left out; d is one printable
// character, the same four times.
func reply229(line []byte) (uint16, error) {
	l := trimEOL(line)
	if !bytes.HasPrefix(l, []byte("229 ")) {
		return 0, errMalformed
	}
	i := bytes.IndexByte(l[4:], '(')
	if i < 0 {
		return 0, errMalformed
	}
	b := l[4+i+1:]
	if len(b) < 6 {
		return 0, errMalformed
	}
	d := b[0]
	if d < 33 || d > 126 || ('0' <= d && d <= '9') || b[1] != d || b[2] != d {
		return 0, errMalformed
	}
	p, used := number(b[3:], 5)
	if used == 0 || p > 65535 || len(b) < 3+used+2 || b[3+used] != d || b[3+used+1] != ')' {
		return 0, errMalformed
	}
	return uint16(p), nil
}

// vipText renders an IPv4 address as PORT/227 numbers: "192,0,2,10".
func vipText(a netip.Addr) []byte {
	b4 := a.As4()
	out := make([]byte, 0, 15)
	for i, x := range b4 {
		if i > 0 {
			out = append(out, ',')
		}
		if x >= 100 {
			out = append(out, '0'+x/100)
		}
		if x >= 10 {
			out = append(out, '0'+x/10%10)
		}
		out = append(out, '0'+x%10)
	}
	return out
}
