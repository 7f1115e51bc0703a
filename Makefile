# The two commands of the README: `make demo` and `make test`. Both create the
# virtual environment when it is missing and install the project into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EVENTS ?=

# The live page's browser test drives Debian's Chromium through Playwright,
# which then downloads no browser of its own.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: demo test test-fast typecheck bench lint venv native clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The hot layers compiled with mypyc (churnwatch/native.py); a no-op while current, and
# pure Python, said in one line, where there is no C compiler. CHURNWATCH_PURE=1 runs pure.
native: $(STAMP)
	$(BIN)/python build_native.py

demo: $(STAMP) native
	$(BIN)/churnwatch demo $(if $(EVENTS),--events $(EVENTS) --json,)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM) for the browser test"; exit 1; }
	$(APT) install -y --no-install-recommends chromium || \
		{ $(APT) update && $(APT) install -y --no-install-recommends chromium; }

# The pure pass: the parity and property tests again on the pure-Python build, the
# fallback that must give the compiled build's results.
PURE_TESTS := tests/unit/test_native.py tests/unit/test_fold_properties.py \
	tests/unit/test_features.py tests/unit/test_state_bounds.py tests/unit/test_policy.py \
	tests/unit/test_lifecycle_tier.py tests/unit/test_reasons.py \
	tests/integration/test_lanes_parity.py tests/e2e/test_worker_parity.py

test: $(STAMP) native $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.mapped_tree mypy
	$(BIN)/python -m pytest
	CHURNWATCH_PURE=1 $(BIN)/python -m pytest -q $(PURE_TESTS)

# The unit tests only: no broker, no database server, no worker process.
test-fast: $(STAMP) native
	$(BIN)/python -m pytest tests/unit -q

# mypy reads source folders, so it runs on the installed shape of the package.
typecheck: $(STAMP)
	$(BIN)/python -m tests.mapped_tree mypy

# Each benchmark prints one JSON object as its last line (docs/benchmarks.md).
bench: $(STAMP) native
	$(BIN)/python -m bench.pipeline --events 50000
	$(BIN)/python -m bench.latency --rate 1000 --events 30000
	$(BIN)/python -m bench.replay --events 200000 --stream-events 20000
	$(BIN)/python -m bench.fold_state --customers 20000 --days 60
	$(BIN)/python -m bench.soak --rate 1000 --seconds 240 --every 20
	$(BIN)/python -m bench.winback --cases 20000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
