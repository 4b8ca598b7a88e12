# voucherd: `make run` serves the API, `make test` runs the tests. Both set everything up.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-faults install compile servers chromium screenshots lint mypy bench loadtest loadtest-smoke clean api-docs

run: install servers
	$(VENV)/bin/voucherd run

test: install servers chromium
	$(PY) -m pytest -q -m "not faults"

# The console's pages as the README shows them (docs/console/*.png), from its browser tests.
screenshots: install servers chromium
	VOUCHERD_SCREENSHOTS=docs/console $(PY) -m pytest -q tests/console -k browser

test-faults: install servers
	$(PY) -m pytest -q -m faults

# The venv is rebuilt when the project's metadata changes; the Cython core is rebuilt when its sources do.
$(STAMP): pyproject.toml setup.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) is required (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "Cython==3.3.1" "setuptools>=77" wheel
	$(PY) -m pip install -q --no-build-isolation -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) compile

compile: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

servers:
	@bash scripts/ensure-servers.sh

# The console's browser tests (tests/console/) drive Debian's chromium; Playwright's download is not used.
chromium:
	@bash scripts/ensure-chromium.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

mypy: install
	$(VENV)/bin/mypy

# After adding routes: the served contract and the compatibility page (tests/test_api_compat.py checks both).
api-docs: install
	$(PY) scripts/build_openapi.py
	$(PY) scripts/api_compat.py --write

bench: install
	$(PY) loadtests/bench_engine.py

# The performance table (loadtests/report/REPORT.md); VOUCHERIFY_HOST + VOUCHERD_APP_ID/TOKEN target a running server.
loadtest: install servers
	@bash scripts/ensure-loadtools.sh
	$(PY) -m loadtests.run

loadtest-smoke: install servers
	$(PY) -m loadtests.run --smoke --out loadtests/report/smoke

clean:
	rm -rf build engine/*.c engine/*.so engine/*.html .pytest_cache
