# Everything bootstraps from a fresh machine with only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-e2e test-package test-airflow test-browser screenshot lint bench clean

# Two distributions, both editable: the product (.) and the simulators it is tested and
# demonstrated against (simulator/: fleet-sim, astro-sim), whose dependencies are in the lock.
$(STAMP): pyproject.toml simulator/pyproject.toml requirements.lock Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e . -e ./simulator
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m demo

# The tests start astro-fleet, invoke and astro-sim thousands of times: compiling the
# sources once here spares each of them compiling what it imports (0.1-0.2 s of CPU), also
# where PYTHONDONTWRITEBYTECODE is set. Two tests at a time to each worker, the slow ones
# first (tests/conftest.py), so neither worker is left idle at the end.
test: $(STAMP)
	$(BIN)/ruff check .
	bash scripts/sshd-test-server.sh install
	bash scripts/postgres-test-server.sh install
	$(BIN)/python -m compileall -q upgrade simulator/fleet_sim demo tasks.py >/dev/null
	$(BIN)/python -m pytest -n 2 --maxschedchunk 2 -q -m "not e2e and not airflow and not browser and not package"

# The story suites (tests/rollout, git_modes, team, ssh, gate: whole waves through the real
# commands, the simulators, git remotes, sshd and PostgreSQL; tests/conftest.py marks them):
# apart from `make test` to keep it a few minutes. CI runs both.
test-e2e: $(STAMP)
	bash scripts/sshd-test-server.sh install
	bash scripts/postgres-test-server.sh install
	$(BIN)/python -m compileall -q upgrade simulator/fleet_sim demo tasks.py >/dev/null
	$(BIN)/python -m pytest -n 2 --maxschedchunk 2 -q -m "e2e and not airflow and not browser and not package"

# The product as a platform team installs it (tests/package): the wheel built from pyproject,
# installed into a fresh venv outside the checkout, imported whole and run there (a minute
# on a quiet machine, mostly pip). Apart from `make test`, whose per-test time-out a loaded
# machine would trip; its own time-out counts the test body only. CI runs it.
test-package: $(STAMP)
	$(BIN)/python -m pytest tests/package -m package -q -rA

# The contract tests against real Apache Airflow 2.10.5 and 3.0.6 (tests/contract): apart
# from `make test` to keep it under 10 minutes. The venvs are cached outside the repo.
AIRFLOW_VERSIONS := 2.10.5 3.0.6

test-airflow: $(STAMP)
	bash scripts/airflow-test-server.sh install $(AIRFLOW_VERSIONS)
	$(BIN)/python -m pytest tests/contract -m airflow -n 2 --dist loadgroup -q -rA

# The HTML report in headless Chromium (tests/browser): runs make demo first (about two
# minutes), so it is apart from `make test`; CI runs both.
test-browser: $(STAMP)
	bash scripts/chromium.sh install
	$(BIN)/python -m pytest tests/browser -m browser -q -rA

# The README's picture of the demo's report (run make demo first); pngquant, when there is
# one, makes it a few times smaller.
screenshot: $(STAMP)
	bash scripts/chromium.sh install
	bash scripts/chromium.sh screenshot .upgrade/reports/rollout-1.html docs/report.png 1200x900
	if command -v pngquant >/dev/null; then pngquant --quality 60-85 --force --output docs/report.png docs/report.png; fi

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .upgrade .sim demo-fleet
