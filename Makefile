# Build, install and test the zones tools.
#
#   make                      release binaries (cargo build --release)
#   make install              binaries, man pages and shell completions under $(DESTDIR)$(PREFIX)
#   make install-service      the host service: systemd units (zones, zonesd) and init script (see integration/service)
#   make test                 scripts/test.sh (every check; root for the integration tests)
#   make bench                bench/run.sh (runz vs runc/crun, zones; root)
#
# PREFIX (default /usr/local) and DESTDIR (staging root for packagers) place the files.
# BUILD=debug installs debug binaries (faster to build; what the tests use).

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= release
CARGO ?= cargo
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INITDIR ?= $(PREFIX)/share/zones

BINDIR := $(DESTDIR)$(PREFIX)/bin
MANDIR := $(DESTDIR)$(PREFIX)/share/man
# Sections as illumos's: administration commands in 8, mdata-get (run in zones) in 1,
# the configuration file zones.conf in 5.
MAN1DIR := $(MANDIR)/man1
MAN5DIR := $(MANDIR)/man5
MAN8DIR := $(MANDIR)/man8
BASHDIR := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

BINS := runz zoneadm zlogin zonecfg imgadm dladm zonestat vmadm zonetrace zonesd
# Commands whose man page and completions are generated from their clap definitions
# (zonecfg parses its argv by hand: its page is docs/man/zonecfg.8).
CLAP_BINS := runz zoneadm zlogin imgadm dladm zonestat vmadm zonetrace

# The build targets the host's triple by name (.cargo/config.toml: static binaries), so the
# artefacts are under target/<triple>/ (or $CARGO_TARGET_DIR/<triple>/).
TARGET_DIR := $(shell scripts/target-dir.sh)
ifeq ($(TARGET_DIR),)
$(error no target directory: scripts/target-dir.sh needs rustc)
endif
ifeq ($(BUILD),debug)
CARGO_FLAGS :=
TARGET := $(TARGET_DIR)/debug
else
CARGO_FLAGS := --release
TARGET := $(TARGET_DIR)/release
endif
GEN := $(TARGET)/generated

.PHONY: all build generate install install-service test bench clean

all: build

# mdata-get (static, like every binary here) is installed beside zoneadm, where zone
# supervisors look for it to copy it into zones, which have no host libraries.
build:
	$(CARGO) build $(CARGO_FLAGS) --bins -p zones-linux -p zones-mdata

generate:
	$(CARGO) run $(CARGO_FLAGS) --quiet -p zones-gen -- $(GEN) >/dev/null

install: build generate
	install -d $(BINDIR) $(MAN1DIR) $(MAN5DIR) $(MAN8DIR) $(BASHDIR) $(ZSHDIR) $(FISHDIR)
	for b in $(BINS); do install -m 0755 $(TARGET)/$$b $(BINDIR)/$$b || exit 1; done
	install -m 0755 $(TARGET)/mdata-get $(BINDIR)/mdata-get
	for b in $(CLAP_BINS); do \
		install -m 0644 $(GEN)/man/man8/$$b.8 $(MAN8DIR)/$$b.8 && \
		install -m 0644 $(GEN)/completions/bash/$$b $(BASHDIR)/$$b && \
		install -m 0644 $(GEN)/completions/zsh/_$$b $(ZSHDIR)/_$$b && \
		install -m 0644 $(GEN)/completions/fish/$$b.fish $(FISHDIR)/$$b.fish || exit 1; \
	done
	install -m 0644 docs/man/zonecfg.8 $(MAN8DIR)/zonecfg.8
	install -m 0644 $(GEN)/completions/bash/zonecfg $(BASHDIR)/zonecfg
	install -m 0644 docs/man/mdata-get.1 $(MAN1DIR)/mdata-get.1
	install -m 0644 docs/man/zones.conf.5 $(MAN5DIR)/zones.conf.5

install-service:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(INITDIR)
	sed 's|@BINDIR@|$(PREFIX)/bin|g' integration/service/zones.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/zones.service
	sed 's|@BINDIR@|$(PREFIX)/bin|g' integration/service/zonesd.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/zonesd.service
	install -m 0755 integration/service/zones.init $(DESTDIR)$(INITDIR)/zones.init

test:
	scripts/test.sh

bench:
	bench/run.sh

clean:
	$(CARGO) clean
