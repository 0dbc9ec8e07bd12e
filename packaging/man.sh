#!/bin/sh
# Writes the ipfront(8) manual page to stdout, made from the binary's own
# help texts so that the two cannot disagree: `ipfront help` and
# `ipfront ctl help`, framed by what a manual page adds (files, signals,
# service). Usage: packaging/man.sh BINARY VERSION
set -eu
bin=$1
version=$2
# roff: a backslash is written \e, and a line starting with . or ' would
# be taken as a request.
verbatim() {
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}
cat <<MAN
.TH IPFRONT 8 "" "ipfront $version" "System Administration"
.SH NAME
ipfront \\- L4 load balancer for TCP, UDP and SCTP on AF_XDP
.SH SYNOPSIS
.B ipfront
.I command
.RI [ flags ]
.SH DESCRIPTION
ipfront balances connections to a virtual address (a target set address)
over up to 16 weighted servers, remembers each choice as an association and
forwards with direct server return, NAT or IPIP/GUE. Its workers busy-poll
AF_XDP sockets; the daemon is steered through a JSON control API
.RB ( "ipfront ctl" )
and exports Prometheus metrics at /metrics.
.SH COMMANDS
.nf
$("$bin" help | verbatim)
.fi
.SH CONTROL CLIENT
.nf
$("$bin" ctl help | verbatim)
.fi
.SH FILES
.TP
.I /etc/ipfront/ipfront.toml
The configuration (every key with its default is documented in the shipped
file). Check it with
.BR "ipfront check --config /etc/ipfront/ipfront.toml" .
.TP
.I /lib/systemd/system/ipfront.service
The service: Type=notify (ready once the tables are published and the
servers resolved), reload = SIGHUP, restart on failure.
.TP
.I /usr/share/ipfront/
A Grafana dashboard (grafana/ipfront.json) and Prometheus alerting rules
(prometheus/alerts.yml) over the metrics.
.SH SIGNALS
.TP
.B SIGHUP
Re-read the configuration file. An invalid file changes nothing; the error
is logged and ipfront_config_last_reload_successful becomes 0.
.TP
.BR SIGTERM ", " SIGINT
Withdraw BGP announcements, forward for drain_time, detach and exit.
.SH SEE ALSO
.BR systemctl (1),
.BR ethtool (8),
.BR ip (8)
MAN
