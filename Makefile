# SealTrail: one command to install and run the demo, one to install and run the tests.
# Both install what they need: Debian packages (apt, as root or through sudo) and Python packages (uv, locked).

APT_PACKAGES := softhsm2 opensc xmlsec1 poppler-utils zbar-tools fonts-liberation2 fonts-dejavu-core \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 python3-venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000

TEST_APT_PACKAGES := chromium docker-compose mupdf-tools libnss3-tools systemd
BENCH_APT_PACKAGES := wrk

.PHONY: install system-deps test-system-deps bench-system-deps python-deps test-python-deps demo serve test lint check bench

install: system-deps python-deps

system-deps:
	@if dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -qv 'install ok installed' \
	    || ! dpkg-query -W $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "Installing system packages: $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

test-system-deps:
	@if dpkg-query -W -f='$${Status}\n' $(TEST_APT_PACKAGES) 2>/dev/null | grep -qv 'install ok installed' \
	    || ! dpkg-query -W $(TEST_APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "Installing test packages (browser tests drive Debian's Chromium; docker-compose validates docker/compose.yaml; systemd-analyze checks deploy/systemd): $(TEST_APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEST_APT_PACKAGES); \
	fi

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set, every Python process (each CLI call,
# server, worker and render process the tests start) would otherwise compile every module it imports (~2.5 s each).
PY_PACKAGES := errors sealtrail signer schemas ledger registry verifier hsm_adapters accounts workflow jobs bench tests

# The runtime dependencies only (`make install`, `make demo`; the image does the same): no test tools. `uv sync`
# makes .venv exactly this set, and `uv run --no-sync` runs what is installed (a plain `uv run` would add the
# default `dev` group back).
python-deps: $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen --no-dev --compile-bytecode
	$(UV) run --no-sync python -m compileall -q -j 0 $(PY_PACKAGES)

# The runtime dependencies plus the `dev` group (pytest, ruff, mypy, playwright…): `make test`, `make check`.
test-python-deps: $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen --group dev --compile-bytecode
	$(UV) run --no-sync python -m compileall -q -j 0 $(PY_PACKAGES)

# The QR links the demo prints and signs point at the address it is then served on (unless set already).
demo: export SEALTRAIL_PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
demo: install
	$(UV) run --no-sync sealtrail demo --out demo-out
	$(UV) run --no-sync sealtrail serve --host $(HOST) --port $(PORT)

# Lint and types first (about half a minute on a warm cache, a few minutes cold; see README), then the suite.
test: system-deps test-system-deps test-python-deps check
	$(UV) run --no-sync pytest

# ruff (lint and format) and mypy (its files and strictness are in pyproject.toml: strict on the domain packages).
check: test-python-deps
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy

lint: check

bench-system-deps:
	@if ! dpkg-query -W -f='$${Status}\n' $(BENCH_APT_PACKAGES) 2>/dev/null | grep -q 'install ok installed'; then \
	  echo "Installing benchmark packages (the QR page load comes from wrk): $(BENCH_APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(BENCH_APT_PACKAGES); \
	fi

# BENCH_QUICK=1: small sizes (under 2 minutes on a quiet machine). See docs/performance.md.
bench: system-deps test-python-deps bench-system-deps  # the benchmarks reuse test fixtures
	$(UV) run --no-sync python -m bench
