# minftpd — build, run, test. `make help` lists the targets.

CARGO  ?= cargo
DIR    ?= $(CURDIR)
LISTEN ?= 127.0.0.1:2121

.PHONY: all build run test soak check clean help

all: build ## Build the release binary (target/release/minftpd)

build:
	$(CARGO) build --release

run: build ## Serve DIR (default: this directory) read-only to anonymous users on 127.0.0.1:2121
	./target/release/minftpd --listen $(LISTEN) --anonymous $(DIR)

test: ## Run the whole test suite: unit tests, then the integration tests with real clients
	$(CARGO) test --all-targets -- --test-threads=4

soak: ## A minute of 200 concurrent sessions with random cuts (MINFTPD_SOAK_SECS to change)
	$(CARGO) test --release --test tests soak -- --ignored --nocapture

check: ## cargo fmt --check and cargo clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

clean: ## Remove build output
	$(CARGO) clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12
