// Package ftp is the FTP helper of target sets with forwarding = "nat" and
// helper = "ftp". It follows each FTP control connection in both
// directions, finds the lines that announce data connections (PORT and EPRT
// from the client, 227 and 229 replies from the server), rewrites what the
// client must not see, keeps TCP sequence numbers consistent when a rewrite
// changed a segment's length, and says which data connections to expect.
//
// It is pure Go and knows no frames: it takes TCP segments (sequence and
// acknowledgement numbers, flags, payload) and returns the segments to send
// in their place. Frames, checksums, the punt, inject and control rings and
// the association records are slowpath/helper_loop.go's.
//
// # What changes, and why so little
//
// ipfront's NAT keeps the client's address: the server sees the real client
// and answers through ipfront, its default gateway, which turns the server's
// address back into the VIP. Therefore:
//
//   - PORT h1,h2,h3,h4,p1,p2 and EPRT |1|addr|port| or |2|addr|port| name
//     the client's own address, which the server reaches as it is: its data
//     connection from port 20 goes through ipfront, which makes it come from
//     VIP:20. Nothing is rewritten, over IPv4 or IPv6. The helper expects
//     that connection (Active).
//   - 227 Entering Passive Mode (h1,h2,h3,h4,p1,p2) names the server's own,
//     private address, which the client cannot reach: the four address
//     numbers become the VIP's and nothing else changes. The port stays,
//     since ipfront forwards VIP:P to the same server's P (Passive).
//   - 229 Entering Extended Passive Mode (|||P|), EPSV's answer over IPv4 or
//     IPv6, names no address (RFC 2428): the client connects to the address
//     it already talks to, the VIP. Nothing is rewritten (Passive).
//
// Only 227 rewrites change a length, so only the server's direction gets a
// sequence offset (Conn.Offset): the server's sequence numbers move by it,
// the client's acknowledgements (and SACK edges) move back (Conn.MapAck).
// Like Linux's nf_nat_ftp the helper remembers where each rewrite applies,
// so a retransmission of data before a rewrite keeps the offset before it,
// and a retransmitted 227 is rewritten again identically.
//
// # Lines across segments
//
// Lines are reassembled across segments, and one segment may carry several.
// A line that may have to change (a client line starting like PORT or EPRT,
// a server line starting "227 ") is held back from the moment its first
// bytes show it until its end arrives, then sent whole; any other line is
// passed on as it arrives (a 229 reply is still read when complete). Held
// bytes go out with the segment that completes the line, split so that no
// segment is longer than the one received or 512 bytes. A segment beyond a
// hole is dropped (the sender retransmits it once the hole is filled):
// only in-order bytes are parsed, so the helper decides on exactly the
// bytes the receiver will take.
//
// # Security
//
// An expectation is only ever made for the control connection's own client
// and a data port of at least 1024. A PORT or EPRT naming another address
// (an FTP bounce), a port below 1024, fields that do not parse, a line
// longer than the limit, or a verb glued to other bytes (PORTX, "PORT\t")
// is refused: nothing is expected, a note says why, and the line's verb is
// overwritten with X's, same length, so the server answers "500 Unknown
// command" and acts on nothing. Verbs are matched without regard to case
// and after up to 16 leading spaces, a superset of what servers accept. A
// refused 227 passes unchanged: the client cannot reach the private address
// it names, and nothing lets it anywhere else.
package ftp
