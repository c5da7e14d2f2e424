# The two commands of the README: `make run` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Browser tests drive Debian's Chromium; no tool ever downloads a browser of its own.
CHROMIUM := /usr/bin/chromium
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install install-test migrate clean bench

run: install node_modules/.installed migrate
	$(BIN)/pairwire serve

migrate: install
	$(BIN)/pairwire migrate

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test node_modules/.installed $(CHROMIUM)

# Browser tests run in a network namespace that has only loopback (WebRTC must not see any
# other interface); PostgreSQL and Redis are not reachable there, so they use SQLite.
test: install-test
	$(BIN)/python -m pytest --ignore=tests/web $(PYTEST_ARGS)
	unshare -n sh -c 'ip link set lo up && exec $(BIN)/python -m pytest tests/web $(PYTEST_ARGS)'


# Pairwire against a Node.js Socket.IO reference (docs/performance.md); BENCH_ARGS=--quick for a smoke run.
bench: install bench/node_modules/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench/node_modules/.installed: bench/package.json bench/package-lock.json
	npm ci --prefix bench --no-audit --no-fund
	touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "make: install Debian's chromium (sudo apt-get install chromium) for the browser tests" >&2; exit 1; \
	fi

clean:
	rm -rf $(VENV) node_modules bench/node_modules
