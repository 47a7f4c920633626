# make demo   - create .venv, install loadwise, run the demo end to end, print where the run is
# make test   - install what the tests need, then run pytest
# make test-fast - the tests without real load or slow simulations (the inner loop, under 2 minutes)
# make bench  - benchmarks (figures printed, not pass/fail)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench clean system-python

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || $(MAKE) --no-print-directory system-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# setuptools tells every editable install to mind same-named folders: ours is the package itself
	$(PY) -W 'ignore:Editable installation' -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Debian's python3 ships without venv/ensurepip; install them when we may.
system-python:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing python3-venv with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv python3-dev gcc >/dev/null; \
	else \
		echo "missing: the Python venv module. Install it first: sudo apt-get install python3-venv" >&2; exit 1; \
	fi

demo: $(STAMP)
	$(VENV)/bin/loadwise demo

test: $(STAMP)
	@bash tests/install-services.sh
	$(PY) -m pytest -q --durations=25

test-fast: $(STAMP)
	@bash tests/install-services.sh
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) -m benchmarks.startup
	$(PY) -m benchmarks.generator_cost
	$(PY) -m benchmarks.open_model
	$(PY) -m benchmarks.report_render
	$(PY) -m benchmarks.abort_watch
	$(PY) -m benchmarks.capacity_fit
	$(PY) -m benchmarks.db_advisor
	$(PY) -m benchmarks.cache_mrc
	$(PY) -m benchmarks.verify_advice
	$(PY) -m benchmarks.gate_calibration
	$(PY) -m benchmarks.soak

clean:
	rm -rf $(VENV) runs .pytest_cache
