# minftpd: build, run, test, install. `make help` lists the targets.

CARGO   ?= cargo
DIR     ?= $(CURDIR)
LISTEN  ?= 127.0.0.1:2121
PREFIX  ?= /usr/local
DESTDIR ?=
TARGET  ?= x86_64-unknown-linux-musl
LIBC    ?= musl
# Cargo features for `make static` (tls: FTPS with rustls and ring).
FEATURES ?=
CARGO_FEATURES = $(if $(FEATURES),--features $(FEATURES))
# ring compiles C for the target: a musl C compiler (Debian: musl-tools).
export CC_x86_64_unknown_linux_musl ?= x86_64-linux-musl-gcc
# For aarch64 there is no Debian musl cross compiler; the glibc one
# (gcc-aarch64-linux-gnu) serves, because ring's C and assembly call nothing
# of libc but memcpy and memset, which musl provides at the link. Only the TLS
# build compiles C, so only it needs (and sets) these.
comma := ,
ifneq ($(filter tls,$(subst $(comma), ,$(FEATURES))),)
export CC_aarch64_unknown_linux_musl ?= aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_musl ?= aarch64-linux-gnu-ar
endif

SBINDIR  = $(PREFIX)/sbin
MANDIR   = $(PREFIX)/share/man
UNITDIR  = $(PREFIX)/lib/systemd/system
BIN      = target/release/minftpd
UNITS    = minftpd.socket minftpd-ftps.socket minftpd.service minftpd-inetd.socket minftpd-inetd@.service
# fail2ban looks for filters and jails here (Debian, Fedora, Alpine alike).
F2BDIR   = $(DESTDIR)/etc/fail2ban

# Each skipped test appends "module::test: reason" here (tests/common skip()).
SKIPS    = target/test-skips.txt

.PHONY: all build run test skips test-static test-cross test-powercut soak bench bench-tls check man-lint static size conf-example install uninstall clean help

# The power-cut test (tests/powercut): CUTS per configuration.
CUTS     ?= 20

all: build ## Build the release binary (target/release/minftpd)

build:
	$(CARGO) build --release

# Install uses the binary that exists; it builds only when there is none,
# so `sudo make install` after `make` never compiles as root.
$(BIN):
	$(CARGO) build --release

run: build ## Serve DIR (default: this directory) read-only to anonymous users on 127.0.0.1:2121
	./target/release/minftpd --listen $(LISTEN) --anonymous $(DIR)

# The default build runs everything; the TLS build then runs the FTPS tests
# only (the rest is the same code), so both builds are covered in one run.
test: ## Run the whole test suite: unit tests, then the integration tests with real clients, then the FTPS tests with --features tls; lists the skips
	@mkdir -p $(dir $(SKIPS)) && : > $(SKIPS)
	@status=0; MINFTPD_SKIP_LOG='$(CURDIR)/$(SKIPS)' $(CARGO) test -- --test-threads=4 || status=$$?; \
	MINFTPD_SKIP_LOG='$(CURDIR)/$(SKIPS)' $(CARGO) test --features tls --test tests tls:: -- --test-threads=4 || status=$$?; \
	$(MAKE) -s skips; exit $$status

skips:
	@if [ -s $(SKIPS) ]; then echo "skipped tests:"; sort $(SKIPS) | sed 's/^/  /'; \
	else echo "skipped tests: none"; fi

# The static build is most of a run's time, so it is a step of its own: build
# it (in a target directory of its own), then run the one ignored test that
# checks it with the path the build printed.
test-static: ## make static, default and FEATURES=tls, then the test that checks size and serves with each binary
	@mkdir -p $(dir $(SKIPS)) && : > $(SKIPS)
	@set -e; status=0; for features in '' tls; do \
	  built=$$(CARGO_TARGET_DIR='$(CURDIR)/target/static-test' $(MAKE) -s static FEATURES=$$features); \
	  printf '%s\n' "$$built"; \
	  bin=$$(printf '%s\n' "$$built" | sed -n 's/^static: built .*: \(.*\), [0-9]* bytes$$/\1/p'); \
	  test -n "$$bin" || { echo "test-static: make static did not say what it built" >&2; exit 1; }; \
	  MINFTPD_STATIC_BIN="$$bin" MINFTPD_STATIC_FEATURES="$$features" MINFTPD_SKIP_LOG='$(CURDIR)/$(SKIPS)' \
	    $(CARGO) test --test tests deploy::install::static_binary -- --ignored || status=$$?; \
	done; \
	$(MAKE) -s skips; exit $$status

# aarch64 musl, default and FTPS builds (own target directory), each run
# under qemu-user: --help, a LIST and an upload with curl (tests/qemu-smoke.sh).
CROSS_TARGET = aarch64-unknown-linux-musl
test-cross: ## make static for aarch64 musl, default and FEATURES=tls, each checked under qemu-aarch64
	@set -e; for features in '' tls; do \
	  built=$$(CARGO_TARGET_DIR='$(CURDIR)/target/cross-test' $(MAKE) -s static TARGET=$(CROSS_TARGET) FEATURES=$$features); \
	  printf '%s\n' "$$built"; \
	  bin=$$(printf '%s\n' "$$built" | sed -n 's/^static: built .*: \(.*\), [0-9]* bytes$$/\1/p'); \
	  test -n "$$bin" || { echo "test-cross: make static did not say what it built" >&2; exit 1; }; \
	  tests/qemu-smoke.sh qemu-aarch64 "$$bin" $$features; \
	done

# The static binary (the same build as test-static's) serves from a VM that
# is SIGKILLed mid-upload CUTS times per configuration; see tests/powercut.
test-powercut: ## Power cuts under uploads in a qemu VM, ext4 and vfat, fsync_uploads no and yes (CUTS=20)
	@set -e; built=$$(CARGO_TARGET_DIR='$(CURDIR)/target/static-test' $(MAKE) -s static); \
	bin=$$(printf '%s\n' "$$built" | sed -n 's/^static: built .*: \(.*\), [0-9]* bytes$$/\1/p'); \
	test -n "$$bin" || { echo "test-powercut: make static did not say what it built" >&2; exit 1; }; \
	tests/powercut/run.sh "$$bin" '$(CUTS)' target/powercut

soak: ## A minute of 200 concurrent sessions with random cuts (MINFTPD_SOAK_SECS to change)
	$(CARGO) test --release --test tests soak -- --ignored --nocapture

bench: build ## Benchmark minftpd against vsftpd (when installed) and print a table
	$(CARGO) bench --bench ftpbench

# cargo bench builds target/release/minftpd itself, here with the feature.
bench-tls: ## The FTPS rows of the benchmark (minftpd built with --features tls, vsftpd with ssl_enable=YES)
	$(CARGO) bench --features tls --bench ftpbench -- --tls

check: ## cargo fmt --check and cargo clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features tls -- -D warnings

man-lint: ## mandoc -T lint on both manual pages
	mandoc -T lint -W warning man/minftpd.8 man/minftpd.conf.5

static: ## Fully static, stripped binary for TARGET (x86_64 musl by default; LIBC=glibc or no musl target: static glibc; FEATURES=tls for FTPS)
	@set -e; \
	musl=; \
	if [ '$(LIBC)' = musl ]; then \
	  if rustup target list --installed 2>/dev/null | grep -qx '$(TARGET)'; then musl=yes; \
	  elif rustup target add '$(TARGET)'; then musl=yes; fi; \
	fi; \
	if [ -n "$$musl" ]; then \
	  case '$(TARGET)' in x86_64-*) linker=;; *) linker='-C linker=rust-lld';; esac; \
	  RUSTFLAGS="-C target-feature=+crt-static $$linker" $(CARGO) build --release --target '$(TARGET)' $(CARGO_FEATURES); \
	  out=$${CARGO_TARGET_DIR:-target}/$(TARGET)/release/minftpd; kind="musl ($(TARGET))"; \
	else \
	  case '$(TARGET)' in x86_64-*) ;; \
	    *) echo "static: target $(TARGET) is not installed and cannot be added; the glibc fallback is for x86_64 only" >&2; exit 1;; \
	  esac; \
	  crypt=$$($(CC) -print-file-name=libcrypt.a); \
	  if [ ! -f "$$crypt" ]; then echo "static: no libcrypt.a for the glibc fallback (apt-get install libcrypt-dev)" >&2; exit 1; fi; \
	  echo "static: building a static glibc binary instead of musl, with $$crypt"; \
	  RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target x86_64-unknown-linux-gnu $(CARGO_FEATURES); \
	  out=$${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/minftpd; kind="glibc static (x86_64-unknown-linux-gnu)"; \
	fi; \
	echo "static: built $$kind: $$out, $$(stat -c %s $$out) bytes"

# Where the static binary's bytes go: an unstripped make static (its own target
# directory), its symbols summed by what they belong to (nm sizes, decimal).
size: ## Build the static binary unstripped and print where its bytes go (README, Size)
	@set -e; built=$$(CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR='$(CURDIR)/target/size' $(MAKE) -s static); \
	bin=$$(printf '%s\n' "$$built" | sed -n 's/^static: built .*: \(.*\), [0-9]* bytes$$/\1/p'); \
	nm -C --size-sort -S -t d "$$bin" | awk '{ size = $$2 + 0; name = $$0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name); \
	  g = "std, core, alloc and musl (the rest)"; \
	  if (name ~ /backtrace_rs|gimli|addr2line|rustc_demangle|miniz_oxide/) g = "std: printing a panic backtrace"; \
	  else if (name ~ /libunwind/) g = "libunwind (panic = unwind)"; \
	  else if (name ~ /^<?minftpd::session/) g = "minftpd: session"; \
	  else if (name ~ /^<?minftpd::(config|setup|resolve)/) g = "minftpd: config, setup checks, resolver"; \
	  else if (name ~ /^<?minftpd::(daemon|sandbox|seccomp|hook)/) g = "minftpd: start-up, sandbox, upload hook"; \
	  else if (name ~ /^<?minftpd::/) g = "minftpd: everything else"; \
	  else if (name ~ /env_logger|^<?log::/) g = "log, env_logger"; \
	  else if (name ~ /getopts/) g = "getopts"; \
	  sum[g] += size; total += size } \
	  END { for (g in sum) printf "%9d  %s\n", sum[g], g; printf "%9d  all sized symbols\n", total }' | sort -rn; \
	size -A "$$bin" | awk '$$1 ~ /^\.(text|rodata|eh_frame|gcc_except_table|data\.rel\.ro|rela\.dyn)$$/ { printf "%9d  section %s\n", $$2, $$1 }'

conf-example: $(BIN) ## Regenerate contrib/minftpd.conf from `minftpd --check-config`, every key commented out
	$(BIN) -c /dev/null --check-config -r / > contrib/minftpd.conf.effective
	{ printf '%s\n' '# /etc/minftpd.conf: an example. Every key is shown with its default,' \
	    '# commented out; see minftpd.conf(5). minftpd --check-config prints the' \
	    '# effective configuration.'; \
	  sed -e '1d' -e 's|^root = /$$|root = /srv/ftp|' -e 's/^\([a-z0-9_]* = \)/#\1/' contrib/minftpd.conf.effective; \
	} > contrib/minftpd.conf
	rm contrib/minftpd.conf.effective

install: $(BIN) ## Install to $(DESTDIR)$(PREFIX): sbin, man5/man8, systemd units, /etc/minftpd.conf if none, the fail2ban filter and jail (/etc/fail2ban)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR)
	install -m 755 $(BIN) $(DESTDIR)$(SBINDIR)/minftpd
	install -m 644 man/minftpd.8 $(DESTDIR)$(MANDIR)/man8/minftpd.8
	install -m 644 man/minftpd.conf.5 $(DESTDIR)$(MANDIR)/man5/minftpd.conf.5
	for unit in $(UNITS); do \
	  sed 's|/usr/local/sbin|$(SBINDIR)|' contrib/$$unit > $(DESTDIR)$(UNITDIR)/$$unit; \
	  chmod 644 $(DESTDIR)$(UNITDIR)/$$unit; \
	done
	@if [ -e $(DESTDIR)/etc/minftpd.conf ]; then \
	  echo "install: keeping the existing $(DESTDIR)/etc/minftpd.conf"; \
	else \
	  install -d $(DESTDIR)/etc && install -m 644 contrib/minftpd.conf $(DESTDIR)/etc/minftpd.conf; \
	fi
	install -d $(F2BDIR)/filter.d $(F2BDIR)/jail.d
	install -m 644 contrib/fail2ban-minftpd.conf $(F2BDIR)/filter.d/minftpd.conf
	@if [ -e $(F2BDIR)/jail.d/minftpd.conf ]; then \
	  echo "install: keeping the existing $(F2BDIR)/jail.d/minftpd.conf"; \
	else \
	  install -m 644 contrib/fail2ban-jail-minftpd.conf $(F2BDIR)/jail.d/minftpd.conf; \
	fi

uninstall: ## Remove what install put there (the config only if unchanged)
	rm -f $(DESTDIR)$(SBINDIR)/minftpd $(DESTDIR)$(MANDIR)/man8/minftpd.8 $(DESTDIR)$(MANDIR)/man5/minftpd.conf.5
	for unit in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$unit; done
	@if cmp -s contrib/minftpd.conf $(DESTDIR)/etc/minftpd.conf; then \
	  rm -f $(DESTDIR)/etc/minftpd.conf; \
	elif [ -e $(DESTDIR)/etc/minftpd.conf ]; then \
	  echo "uninstall: keeping the changed $(DESTDIR)/etc/minftpd.conf"; \
	fi
	rm -f $(F2BDIR)/filter.d/minftpd.conf
	@if cmp -s contrib/fail2ban-jail-minftpd.conf $(F2BDIR)/jail.d/minftpd.conf; then \
	  rm -f $(F2BDIR)/jail.d/minftpd.conf; \
	elif [ -e $(F2BDIR)/jail.d/minftpd.conf ]; then \
	  echo "uninstall: keeping the changed $(F2BDIR)/jail.d/minftpd.conf"; \
	fi

clean: ## Remove build output
	$(CARGO) clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14
