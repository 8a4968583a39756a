# The workbook's commands. `make chat` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080
DEST ?= student-release
HAS_SOLUTIONS := $(wildcard solutions/__init__.py)

PHONY_EXTRA := test-browser test-redis measure-redis-hop explore
.PHONY: $(PHONY_EXTRA) help setup chat chat-exercises test lint format lab docs docs-build bench \
        bench-quick check student-release student-release-check clean

help:
	@echo "make chat            run the chat server on http://127.0.0.1:$(PORT) (SQLite, in-process)"
	@echo "make chat-exercises  the same server, running your code from exercises/"
	@echo "make test            every check: lint, server, exercises, browser, Redis, notebooks, site"
	@echo "make explore         the model-based test and Schemathesis, far longer, with fresh seeds"
	@echo "make check           your exercises' progress (python -m exercises)"
	@echo "make lab             JupyterLab on the notebooks"
	@echo "make docs            serve the site on http://127.0.0.1:8000; make docs-build builds site/"
	@echo "make bench           the benchmark: 1,000 to 10,000 streams, my_chat beside raw asyncio"
	@echo "make student-release DEST=folder   a copy without solutions/, for learners"

# One virtual environment with the exact versions the workbook was tested with.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

chat: $(STAMP)
	$(PY) -m my_chat --port $(PORT) $(if $(HAS_SOLUTIONS),,--exercises)

chat-exercises: $(STAMP)
	$(PY) -m my_chat --port $(PORT) --exercises

check: $(STAMP)
	$(PY) -m exercises $(ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

docs: $(STAMP)
	$(PY) tools/build_docs.py --serve

docs-build: $(STAMP)
	$(PY) tools/build_docs.py

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

test-browser: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -m browser --ignore=tests/test_site.py

test-redis: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -m redis

# The model-based test and Schemathesis with much larger budgets and new random seeds each
# time (make test runs them seeded and small). A failure prints the shortest sequence of steps
# or the request that reproduces it. EXAMPLES=N sets how many runs of the model.
explore: $(STAMP)
	MY_CHAT_EXPLORE=1 MY_CHAT_EXPLORE_EXAMPLES=$(or $(EXAMPLES),60) $(PY) -m pytest -p no:cacheprovider -q \
		tests/test_model.py tests/test_schemathesis.py

measure-redis-hop: $(STAMP)
	$(PY) tools/measure_redis_hop.py $(ARGS)

bench-quick: $(STAMP)
	$(PY) -m bench --quick $(ARGS)

# Everything, in the order that fails fastest. In a student release (no solutions/), only
# what does not need the solutions: the server's own code, the wire format and the tooling.
ifneq ($(HAS_SOLUTIONS),)
test: $(STAMP)
	$(MAKE) lint
	$(PY) tools/make_exercises.py --check
	$(PY) -m pytest -p no:cacheprovider --ignore=tests/test_site.py
	$(PY) tools/check_stubs_fail.py
	$(PY) -m pytest -p no:cacheprovider --nbmake notebooks/
	$(PY) tools/build_docs.py
	$(PY) -m pytest -p no:cacheprovider tests/test_site.py
	$(MAKE) student-release-check
else
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -p no:cacheprovider
	$(PY) -m exercises list
endif

student-release: $(STAMP)
	$(PY) tools/student_release.py $(DEST)

# Build a student release in a temporary folder and run its own `make test` there, with a
# virtual environment that shares this one's packages but imports the release's own code.
student-release-check: $(STAMP)
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	$(PY) tools/student_release.py "$$dir/release"; \
	python3 -m venv "$$dir/release/.venv"; \
	site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	release_site=$$("$$dir/release/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	echo "$$site" > "$$release_site/_workbook_shared.pth"; \
	echo "$$dir/release" > "$$release_site/_workbook_release.pth"; \
	touch "$$dir/release/.venv/.installed"; \
	$(MAKE) -C "$$dir/release" test; \
	echo "student release: ok"

clean:
	rm -rf site build chapters/notebooks .pytest_cache .ruff_cache
