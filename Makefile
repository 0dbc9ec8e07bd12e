# ipfront: `make demo` runs the main job on a network-namespace lab,
# `make test` runs every test. Both need root (namespaces, XDP, AF_XDP).
GO      ?= go
BIN     := bin
GOFLAGS ?=

.PHONY: all build demo test test-unit test-race fuzz bench bench-smoke profile vet clean mutate soak ha-ecmp release install package

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ipfront ./cmd/ipfront
	$(GO) build $(GOFLAGS) -o $(BIN)/iplab ./cmd/iplab
	@if [ -d bench/pktgen ]; then $(GO) build $(GOFLAGS) -o $(BIN)/pktgen ./bench/pktgen; fi

# Builds everything, creates the lab (client, ipfront, three servers on one
# bridge), runs ipfront with the shipped config, drives TCP and UDP through
# the VIP, prints the distribution and counters, and tears the lab down.
demo: build
	$(BIN)/iplab demo --config configs/demo.toml --ipfront $(BIN)/ipfront

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)

# Every test: unit, fuzz seed corpora, race detector on the concurrent
# packages, network-namespace end-to-end tests, and the benchmark harness's
# short run so it cannot rot.
test: vet build
	$(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -race -timeout 10m ./fastpath/ ./fastpath/assoc/ ./fastpath/ring/ ./fastpath/porttest/ ./slowpath/...
	@if [ -f bench/harness.sh ]; then $(MAKE) bench-smoke; fi

# Mutation check, not part of `make test` (about a quarter of an hour; root
# for its end-to-end entries): applies each one-line mutation of
# tools/mutate/mutations.txt to a temporary copy of the repository, runs the
# tests listed for it, reports which survived and records the result in
# TESTING.md. MUTATE_FLAGS="-only seqlock" runs a subset, "-check" only
# checks that every entry still applies to the code.
mutate:
	$(GO) run ./tools/mutate -write TESTING.md $(MUTATE_FLAGS)

# The hostile packet suite and the fault tests of make test, SOAK (default
# 20) times longer: every hostile frame sent 3*SOAK times, SOAK kills and
# restarts, SOAK silent-server rounds, 10*SOAK reloads under traffic, a SYN
# flood until min(SOAK, 4) million spoofed sources were seen, SOAK rounds of
# forged TCP and SCTP teardowns.
SOAK ?= 20
soak:
	IPFRONT_SOAK=$(SOAK) $(GO) test -count=1 -timeout 60m -v \
		-run 'TestHostileFrames|TestSIGKILLUnderTraffic|TestRestartCarriesConnections|TestSilentServerFoundByHealthChecks|TestReloadRacingHeavyTraffic|TestSYNFlood|TestSpoofedTCPTeardown|TestSpoofedSCTPTeardown' ./e2e/

# Issue 11's failover test on its own, verbose (ECMP through BIRD over two
# instances with [ha] and BGP): SIGKILL, 10 % sync loss, forged and replayed
# sync datagrams, machine loss, SIGTERM. make test runs it too.
ha-ecmp: build
	$(GO) test -count=1 -v -run TestHAECMPFailover ./e2e/

# Fuzzing beyond the seed corpora that `make test` replays: every fuzz target
# of the repository (found by its `func FuzzXxx` line, so a new parser's
# target joins by itself: packets, the engine, config, the control API, FTP)
# runs for FUZZTIME, one after another; the whole run is bounded by the
# number of targets times FUZZTIME (8 targets at the default 15s: about two
# and a half minutes with compilation). A crasher is written under the
# package's testdata/fuzz/FuzzXxx/ and fails the run; commit that file and
# it is a regression test `make test` replays from then on.
# FUZZTIME=2m for longer sessions, FUZZ=FuzzAPI for the targets matching a
# regular expression.
FUZZTIME ?= 15s
FUZZ     ?= .
fuzz:
	@set -e; n=0; \
	for f in $$(grep -rl --include='*_test.go' --exclude-dir=out '^func Fuzz' . | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f | grep -E -- '$(FUZZ)'); do \
			echo "== $$t ($$(dirname $$f), $(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f)/; \
			n=$$((n+1)); \
		done; \
	done; \
	echo "fuzz: $$n targets, $(FUZZTIME) each, no crasher"

bench: build
	bench/harness.sh full

bench-smoke: build
	bench/harness.sh smoke

profile: build
	bench/harness.sh profile

clean:
	rm -rf $(BIN) bench/out

# Release build, install and Debian package (issue 13). VERSION is the
# package's version: the last v* tag without its v, else 0.0.0~git<date>.<rev>
# (Debian versions must start with a digit); it is stamped into the binary
# (ipfront version, ipfront_build_info). The release binary is static
# (CGO_ENABLED=0) and goes to PKGOUT, never over bin/ipfront.
VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo "$${v\#v}" | tr - '~' || \
	echo "0.0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
ARCH    ?= $(shell $(GO) env GOARCH)
PKGOUT  ?= $(BIN)/package
PREFIX  ?= /usr
UNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=
# nfpm builds the .deb; an explicit version, compiled by the go command on
# first use (no other tool to install).
NFPM    ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

release:
	mkdir -p $(PKGOUT)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -buildvcs=auto -trimpath -ldflags "-X github.com/ipfront/ipfront/internal/version.Version=$(VERSION)" \
		-o $(PKGOUT)/ipfront ./cmd/ipfront
	packaging/man.sh $(PKGOUT)/ipfront "$(VERSION)" > $(PKGOUT)/ipfront.8
	gzip -9nf $(PKGOUT)/ipfront.8

# Installs the release binary, the unit (its paths follow PREFIX), the
# manual page, the dashboards and, unless one exists, the configuration.
# DESTDIR stages into a directory instead of /.
install: release
	install -D -m 0755 $(PKGOUT)/ipfront $(DESTDIR)$(PREFIX)/bin/ipfront
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/bin/ipfront|$(PREFIX)/bin/ipfront|g' packaging/ipfront.service > $(DESTDIR)$(UNITDIR)/ipfront.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ipfront.service
	install -D -m 0644 $(PKGOUT)/ipfront.8.gz $(DESTDIR)$(PREFIX)/share/man/man8/ipfront.8.gz
	install -D -m 0644 contrib/grafana/ipfront.json $(DESTDIR)$(PREFIX)/share/ipfront/grafana/ipfront.json
	install -D -m 0644 contrib/prometheus/alerts.yml $(DESTDIR)$(PREFIX)/share/ipfront/prometheus/alerts.yml
	@if [ -e $(DESTDIR)/etc/ipfront/ipfront.toml ]; then echo "kept $(DESTDIR)/etc/ipfront/ipfront.toml"; \
	else install -D -m 0640 configs/example.toml $(DESTDIR)/etc/ipfront/ipfront.toml; fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "edit /etc/ipfront/ipfront.toml, then: systemctl enable --now ipfront"

# The .deb: $(PKGOUT)/ipfront_$(VERSION)_$(ARCH).deb.
package: release
	sed 's|$${PKGOUT}|$(abspath $(PKGOUT))|g' packaging/nfpm.yaml > $(PKGOUT)/nfpm.yaml
	VERSION="$(VERSION)" ARCH="$(ARCH)" $(NFPM) package --config $(PKGOUT)/nfpm.yaml --packager deb --target $(PKGOUT)/
