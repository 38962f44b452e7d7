# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_EXTRAS := edge,central,kiosk,hardware,face,dev
DEMO_EXTRAS := edge,central
PYTEST_ARGS ?=

.PHONY: test demo lint bench screens system-deps demo-system-deps clean

## Install the Debian packages listed in system-packages.txt that are missing.
system-deps:
	@missing=$$(grep -Ev '^\s*(#|$$)' system-packages.txt | while read -r p; do \
	  dpkg -s "$$p" >/dev/null 2>&1 || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
	    --no-install-recommends $$missing; \
	fi

demo-system-deps:
	@command -v mosquitto >/dev/null || command -v /usr/sbin/mosquitto >/dev/null || { \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	  $(SUDO) apt-get install -y -q --no-install-recommends mosquitto; }

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[$(TEST_EXTRAS)]"
	$(PIP) install -q --no-deps "face_recognition>=1.3"
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[$(DEMO_EXTRAS)]"
	touch $@

## Install everything (system packages too) and run the whole suite.
test: system-deps $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## The main job on embedded defaults: five centers replay a day, figures are printed.
demo: demo-system-deps $(VENV)/.installed-demo
	$(VENV)/bin/welfare demo

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
