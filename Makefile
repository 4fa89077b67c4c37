# The two commands that matter: `make demo` (no server needed) and `make test` (starts the servers).
CARGO ?= cargo
TEST_THREADS ?= 6
SIZE ?= 100000

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
