# Everything runs from the project's own virtualenv, created on first use. Serving installs only
# the runtime pins (requirements.txt); the targets that test, lint, type-check, benchmark or
# generate a client add the development set (requirements-dev.txt) on top.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
CLIENT_DIR ?= build/clinic-client
OPENAPI_DOCUMENT ?= build/openapi.json

.PHONY: run test worker migrate resync-calendar resync-rag lint typecheck screenshots bench bench-scale bench-reminders bench-waitlist bench-report client clean

$(RUN_STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $(DEV_STAMP)

run: $(RUN_STAMP)  ## serve the API (embedded PostgreSQL when DATABASE_URL is unset)
	$(BIN)/python -m app serve

migrate: $(RUN_STAMP)
	$(BIN)/python -m app migrate

worker: $(RUN_STAMP)  ## the outbox dispatcher on its own (Google Calendar, RAG)
	$(BIN)/python -m app worker

resync-calendar: $(RUN_STAMP)  ## re-mirror every active future appointment to Google Calendar
	$(BIN)/python -m app resync-calendar

resync-rag: $(RUN_STAMP)  ## re-send every doctor to the RAG service
	$(BIN)/python -m app resync-rag

test: $(DEV_STAMP)  ## the whole suite: TEST_DATABASE_URL, else a throw-away embedded PostgreSQL
	$(BIN)/python -m pytest

screenshots: $(DEV_STAMP)  ## redraw docs/desk.png and docs/desk-phone.png from the desk's browser tests
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/test_desk_page.py::test_a_busy_day_with_six_doctors_reads_at_laptop_size tests/test_desk_second_round.py::test_a_phone_shows_one_doctor_at_a_time_without_sideways_scrolling

bench: $(DEV_STAMP)  ## seed a clinic, load the baseline and the service with wrk; writes bench/results.{json,md}
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null 2>&1 || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.run

bench-scale: $(DEV_STAMP)  ## 50 doctors against 500 with two years of history; bench/results-scale.{json,md}
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null 2>&1 || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.scale

bench-reminders: $(DEV_STAMP)  ## a reminder policy change at the 500-doctor scale, with reads meanwhile
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null 2>&1 || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.reminder_replan

bench-report: $(RUN_STAMP)  ## copy bench/results.md and bench/results-scale.md into BENCHMARKS.md
	$(BIN)/python -m bench.report

client: $(DEV_STAMP)  ## a typed Python client of the API (openapi-python-client) in $(CLIENT_DIR)
	mkdir -p $(dir $(OPENAPI_DOCUMENT))
	$(BIN)/python -m app openapi --output $(OPENAPI_DOCUMENT)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/openapi-python-client generate --path $(OPENAPI_DOCUMENT) \
	  --config openapi-python-client.yaml --meta uv --output-path $(CLIENT_DIR) --overwrite


bench-waitlist: $(DEV_STAMP)  ## cancels with 10,000 entries waiting against none; how soon a freed slot is offered
	$(BIN)/python -m bench.waitlist

lint: $(DEV_STAMP)
	$(BIN)/ruff check app tests alembic bench
	$(BIN)/ruff format --check app tests alembic bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
