# PatchPilot — `make run` starts the main job, `make test` runs the whole suite.
# Both create .venv and install what is needed on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job: load the knowledge base (official sources, or $PATCHPILOT_FEEDS_DIR when
# set), then start the server with a worker and a local agent on the embedded SQLite
# database: it scans this machine, prints its findings, the URL and a first admin token.
# A feed that cannot be loaded is reported and the rest still runs.
run: $(STAMP)
	-$(BIN)/patchpilot db update
	$(BIN)/patchpilot db status
	$(BIN)/patchpilot up

# Two pytest workers (pytest-xdist): every test owns its database schema, temporary
# folders and loopback ports, so the suite runs in about two thirds of the time.
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --durations=25

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Peers benchmarked side by side, in a virtualenv of their own (never in the product's).
PEERS := .venv-peers
$(PEERS)/.installed-stamp:
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet faraday-plugins
	touch $(PEERS)/.installed-stamp

bench: $(STAMP) $(PEERS)/.installed-stamp
	$(BIN)/python -m bench.bench_load --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_match --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_collect
	$(BIN)/python -m bench.bench_sbom
	$(BIN)/python -m bench.bench_ssh
	$(BIN)/python -m bench.bench_discover
	$(BIN)/python -m bench.bench_sweep --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_ingest
	$(BIN)/python -m bench.bench_rematch
	$(BIN)/python -m bench.bench_priority --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_plan --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_plan_pages --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_dashboard --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_report_pdf --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_reports --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_import --pg postgresql://postgres@127.0.0.1:5432/test \
		--faraday-python $(PEERS)/bin/python
	$(BIN)/python -m bench.bench_playbooks --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_msrc --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_jvn --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_windows_match --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_cpe_match --pg postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python -m bench.bench_scaleout --pg postgresql://postgres@127.0.0.1:5432/test

clean:
	rm -rf $(VENV) $(PEERS) build *.egg-info
