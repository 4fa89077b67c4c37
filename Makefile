# `make demo` (no server needed), `make test` (starts the servers), `make install` / `make dist` (ship it).
CARGO ?= cargo
TEST_THREADS ?= 6
SIZE ?= 100000
BENCH_ARGS ?=
# Where cargo puts its builds (CARGO_TARGET_DIR when set).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
BUILD_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' backfill-build/Cargo.toml | head -n 1)
# Where cargo unpacks the crates it builds (`make package`).
CARGO_HOME ?= $(HOME)/.cargo
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
# The commit `backfill --version` reports: the checkout's, `-dirty` when it has uncommitted changes.
GIT_COMMIT := $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null && echo $$c || echo $$c-dirty; } || echo unknown)
DIST_NAME := backfill-$(VERSION)-$(HOST)

.PHONY: demo test db lint bench install dist package

# The first build takes a few minutes: cargo shows its progress; later runs start in seconds.
demo:
	@echo "make demo: building the release binary with cargo (the first build takes a few minutes)"
	BACKFILL_GIT_COMMIT=$(GIT_COMMIT) $(CARGO) build --release --bin backfill
	@echo "make demo: running $(TARGET_DIR)/release/backfill demo --keep"
	@$(TARGET_DIR)/release/backfill demo --keep

test: db
	$(CARGO) build --all-targets
	$(CARGO) test --all-targets --no-fail-fast -- --test-threads=$(TEST_THREADS)

db:
	./scripts/db-up.sh

lint:
	$(CARGO) fmt --check
	@# cargo fmt cannot see the migrations the build script includes by path.
	rustfmt --check --edition 2021 data_migrations/*.rs examples/data_migrations/*.rs
	$(CARGO) clippy --all-targets -- -D warnings

# `backfill` into ~/.cargo/bin (on PATH where rustup installed cargo), built from this checkout.
install:
	BACKFILL_GIT_COMMIT=$(GIT_COMMIT) $(CARGO) install --path . --locked --bin backfill

# dist/backfill-VERSION-HOST.tar.gz (the stripped binary, its --version, README.md) and its SHA-256
# sum: copy both to the deploy host, `sha256sum -c`, unpack, and compare `backfill --version`.
dist:
	BACKFILL_GIT_COMMIT=$(GIT_COMMIT) $(CARGO) build --release --locked --bin backfill
	rm -rf dist/$(DIST_NAME) && mkdir -p dist/$(DIST_NAME)
	cp $(TARGET_DIR)/release/backfill README.md dist/$(DIST_NAME)/
	dist/$(DIST_NAME)/backfill --version > dist/$(DIST_NAME)/VERSION
	tar -C dist --owner=0 --group=0 --sort=name -czf dist/$(DIST_NAME).tar.gz $(DIST_NAME)
	cd dist && sha256sum $(DIST_NAME).tar.gz > $(DIST_NAME).tar.gz.sha256
	@# Check what ships, as a deploy host would: the sum, no debug info or symbols, the version.
	cd dist && sha256sum -c $(DIST_NAME).tar.gz.sha256
	@if readelf -S dist/$(DIST_NAME)/backfill | grep -Eq '\.debug|\.symtab'; then echo "dist: the binary has debug info or symbols" >&2; exit 1; fi
	@dist/$(DIST_NAME)/backfill --version | cmp -s - dist/$(DIST_NAME)/VERSION || { echo "dist: --version differs from VERSION" >&2; exit 1; }
	@cat dist/$(DIST_NAME)/VERSION
	@echo "binary: $$(wc -c < dist/$(DIST_NAME)/backfill) bytes"
	@cat dist/$(DIST_NAME).tar.gz.sha256

# The two crates as a registry would get them (backfill-build, then backfill on it through a local
# registry), each built from its packaged files alone: a file the build reads but the package lacks
# fails here. `make test` checks only the file lists (tests/package.rs); this builds.
# cargo takes a registry crate whose version it knows for unchanged: both the backfill-build it
# unpacked from that local registry in an earlier run and its build of it would verify backfill
# against a stale helper, so both go first (the next build compiles backfill-build again).
package:
	rm -rf $(CARGO_HOME)/registry/src/-*/backfill-build-$(BUILD_VERSION)
	$(CARGO) clean -p backfill-build
	$(CARGO) package --workspace --locked

# Benchmarks (BENCHMARKS.md): backfill vs one set-based statement and vs the old per-row command, on
# PostgreSQL and MariaDB, SIZE competencies (SIZE=1000000 for the full table). Creates and drops bf_bench.
bench: db
	$(CARGO) build --release --features bench --bins
	$(TARGET_DIR)/release/bench --size $(SIZE) $(BENCH_ARGS)
