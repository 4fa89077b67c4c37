# The two commands that matter: `make demo` (no server needed) and `make test` (starts the servers).
CARGO ?= cargo
TEST_THREADS ?= 6
SIZE ?= 100000
BENCH_ARGS ?=

.PHONY: demo test db lint bench

demo:
	$(CARGO) run --release --quiet -- demo

test: db
	$(CARGO) build --all-targets
	$(CARGO) test --all-targets -- --test-threads=$(TEST_THREADS)

db:
	./scripts/db-up.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Benchmarks (BENCHMARKS.md): backfill vs one set-based statement and vs the old per-row command, on
# PostgreSQL and MariaDB, SIZE competencies (SIZE=1000000 for the full table). Creates and drops bf_bench.
bench: db
	$(CARGO) build --release --bins
	./target/release/bench --size $(SIZE) $(BENCH_ARGS)
