# The workbook's commands. `make chat` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080
DEST ?= student-release
HAS_SOLUTIONS := $(wildcard solutions/__init__.py)

PHONY_EXTRA := test-browser test-redis test-nginx measure-redis-hop grpc-stubs config-example \
               api-transcripts notebooks-zh explore bench-memory
.PHONY: $(PHONY_EXTRA) help setup chat chat-exercises test lint format lab docs docs-build bench \
        bench-quick check watch next hint task run-step student-release student-release-check clean

help:
	@echo "make chat            run the chat server on http://127.0.0.1:$(PORT) (SQLite, in-process)"
	@echo "make chat-exercises  the same server, running your code from exercises/"
	@echo "make test            every check: lint, server, exercises, browser, Redis, notebooks, site"
	@echo "make explore         the model-based test and Schemathesis, far longer, with fresh seeds"
	@echo "make check           your exercises' progress, per phase (python -m exercises)"
	@echo "make watch           check the current exercise on every save; move on when it passes"
	@echo "make next            the exercise to do next"
	@echo "make hint NAME=x     the next hint for exercise x"
	@echo "make task NAME=x     the task of exercise x (BOOK_LANG=zh: any of these in Chinese)"
	@echo "make run-step        serve your chat server at its current phase-5 step"
	@echo "make lab             JupyterLab on the notebooks"
	@echo "make docs            serve the site on http://127.0.0.1:8000; make docs-build builds site/"
	@echo "make bench           the benchmark: 1,000 streams to the open-file cap, my_chat beside raw asyncio"
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
	$(PY) -m exercises $(ARGS) $(BOOK_LANG_OPTION)

# The learner's commands: each runs the checker with the workbook's own Python, so nothing
# needs activating. NAME picks an exercise (watch, hint, run-step); without it, the current one.
# BOOK_LANG=zh speaks Chinese whatever the locale (the checker otherwise follows LANG).
BOOK_LANG_OPTION = $(if $(BOOK_LANG),--lang $(BOOK_LANG))

watch: $(STAMP)
	$(PY) -m exercises watch $(NAME) $(BOOK_LANG_OPTION)

next: $(STAMP)
	$(PY) -m exercises next $(BOOK_LANG_OPTION)

hint: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make hint NAME=exercise (make next names the current one)"; exit 2; }
	$(PY) -m exercises hint $(NAME) $(BOOK_LANG_OPTION)

task: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make task NAME=exercise (make next names the current one)"; exit 2; }
	$(PY) -m exercises task $(NAME) $(BOOK_LANG_OPTION)

run-step: $(STAMP)
	$(PY) -m exercises run $(NAME) --port $(PORT) $(BOOK_LANG_OPTION)

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

test-nginx: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -m nginx

# The model-based test and Schemathesis with much larger budgets and new random seeds each
# time (make test runs them seeded and small). A failure prints the shortest sequence of steps
# or the request that reproduces it. EXAMPLES=N sets how many runs of the model.
explore: $(STAMP)
	MY_CHAT_EXPLORE=1 MY_CHAT_EXPLORE_EXAMPLES=$(or $(EXAMPLES),60) $(PY) -m pytest -p no:cacheprovider -q \
		tests/test_model.py tests/test_schemathesis.py

measure-redis-hop: $(STAMP)
	$(PY) tools/measure_redis_hop.py $(ARGS)

# Generated files that are committed; the tests fail while they are out of date.
grpc-stubs: $(STAMP)
	$(PY) tools/make_grpc_stubs.py

config-example: $(STAMP)
	$(PY) tools/make_config_example.py

# The API page's curl examples, run against a fresh server (needs curl and jq).
api-transcripts: $(STAMP)
	$(PY) tools/make_api_transcripts.py $(ARGS)

# The Chinese notebooks, notebooks/NAME.zh.ipynb (git-ignored), from notebooks/zh/NAME.toml.
notebooks-zh: $(STAMP)
	$(PY) tools/notebooks_zh.py

bench-quick: $(STAMP)
	$(PY) -m bench --quick $(ARGS)

# Where an idle stream's memory goes, by component, line and object type (bench/stream_memory.py).
bench-memory: $(STAMP)
	$(PY) -m bench.stream_memory $(ARGS)

# Everything, in the order that fails fastest. In a student release (no solutions/), only
# what does not need the solutions: the server's own code, the wire format and the tooling.
# nbmake runs the English notebooks; tools/build_docs.py then runs every notebook again, both
# editions (it builds the Chinese ones first), and fails on any error: so each Chinese notebook
# runs once, not twice.
#
# Most of the time goes to waiting (servers starting, streams, timeouts, notebook kernels,
# Chromium), so each long stage runs two or three things at once on the two cores: the test
# suite and nbmake in two pytest-xdist workers (PYTEST_PARALLEL), the site build's notebooks
# in two lanes, tests/test_site.py with three pages open. The stages still run one after
# another: each already keeps both cores busy, and two side by side would only make every
# test that waits for something wait longer, near its time limits. --dist loadfile keeps each
# file on one worker, so a costly module fixture (the quick benchmark, one Chromium, the API
# transcript) runs once (xdist_group marks would not do: pytest-xdist 3.8 cannot tag the node
# ids of pytest 9, so loadgroup ignores them). --no-loadscope-reorder hands files out in
# collection order, where tests/conftest.py puts the two longest tests first, as notebook 5,
# the longest, is first here: started last, one of them would run alone at the end. Each
# worker takes the ports of the servers it starts from a block of its own (tests/ports.py).
PYTEST_PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder
LONGEST_NOTEBOOK := notebooks/05_build_the_chat_room.ipynb
EN_NOTEBOOKS := $(filter $(LONGEST_NOTEBOOK),$(wildcard notebooks/*.ipynb)) \
                $(filter-out %.zh.ipynb $(LONGEST_NOTEBOOK),$(wildcard notebooks/*.ipynb))

ifneq ($(HAS_SOLUTIONS),)
test: $(STAMP)
	$(MAKE) lint
	$(PY) tools/make_exercises.py --check
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_PARALLEL) --ignore=tests/test_site.py
	$(PY) tools/check_stubs_fail.py
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_PARALLEL) --nbmake $(EN_NOTEBOOKS)
	$(PY) tools/build_docs.py
	$(PY) -m pytest -p no:cacheprovider tests/test_site.py
	$(MAKE) student-release-check
else
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_PARALLEL)
	$(PY) tools/check_stubs_fail.py
	$(PY) -m exercises list
endif

student-release: $(STAMP)
	$(PY) tools/student_release.py $(DEST)

# Build a student release in a temporary folder and run its own `make test` there, with a
# virtual environment that shares this one's packages but imports the release's own code.
# The packages are found where pytest is installed: in a venv that itself borrows another's
# packages through a .pth file, its own site-packages folder holds next to nothing.
student-release-check: $(STAMP)
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	$(PY) tools/student_release.py "$$dir/release"; \
	python3 -m venv "$$dir/release/.venv"; \
	site=$$($(PY) -c 'import pathlib, pytest; print(pathlib.Path(pytest.__file__).parents[1])'); \
	release_site=$$("$$dir/release/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	echo "$$site" > "$$release_site/_workbook_shared.pth"; \
	echo "$$dir/release" > "$$release_site/_workbook_release.pth"; \
	touch "$$dir/release/.venv/.installed"; \
	$(MAKE) -C "$$dir/release" test; \
	echo "student release: ok"

clean:
	rm -rf site build chapters/notebooks .pytest_cache .ruff_cache
