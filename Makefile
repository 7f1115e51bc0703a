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

.PHONY: demo test test-fast typecheck bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/churnwatch demo $(if $(EVENTS),--events $(EVENTS) --json,)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM) for the browser test"; exit 1; }
	$(APT) install -y --no-install-recommends chromium || \
		{ $(APT) update && $(APT) install -y --no-install-recommends chromium; }

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.mapped_tree mypy
	$(BIN)/python -m pytest

# The unit tests only: no broker, no database server, no worker process.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

# mypy reads source folders, so it runs on the installed shape of the package.
typecheck: $(STAMP)
	$(BIN)/python -m tests.mapped_tree mypy

# Each benchmark prints one JSON object as its last line (docs/benchmarks.md).
bench: $(STAMP)
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
