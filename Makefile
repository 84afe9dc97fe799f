# Everything runs from the project's own virtualenv, created on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test worker migrate resync-calendar resync-rag lint typecheck screenshots bench bench-scale bench-reminders clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)  ## serve the API (embedded PostgreSQL when DATABASE_URL is unset)
	$(BIN)/python -m app serve

migrate: $(STAMP)
	$(BIN)/python -m app migrate

worker: $(STAMP)  ## the outbox dispatcher on its own (Google Calendar, RAG)
	$(BIN)/python -m app worker

resync-calendar: $(STAMP)  ## re-mirror every active future appointment to Google Calendar
	$(BIN)/python -m app resync-calendar

resync-rag: $(STAMP)  ## re-send every doctor to the RAG service
	$(BIN)/python -m app resync-rag

test: $(STAMP)  ## the whole suite: TEST_DATABASE_URL, else a throw-away embedded PostgreSQL
	$(BIN)/python -m pytest

screenshots: $(STAMP)  ## redraw docs/desk.png and docs/desk-phone.png from the desk's browser tests
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/test_desk_page.py::test_a_busy_day_with_six_doctors_reads_at_laptop_size tests/test_desk_second_round.py::test_a_phone_shows_one_doctor_at_a_time_without_sideways_scrolling

bench: $(STAMP)  ## seed a clinic, load the baseline and the service with wrk; writes BENCHMARKS.md
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null 2>&1 || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.run

bench-scale: $(STAMP)  ## 50 doctors against 500 with two years of history, side by side
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null 2>&1 || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.scale

bench-reminders: $(STAMP)  ## a reminder policy change at the 500-doctor scale, with reads meanwhile
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null 2>&1 || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.reminder_replan

lint: $(STAMP)
	$(BIN)/ruff check app tests alembic bench
	$(BIN)/ruff format --check app tests alembic bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
