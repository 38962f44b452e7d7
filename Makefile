# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_EXTRAS := edge,central,kiosk,hardware,face,dev
DEMO_EXTRAS := edge,central
PYTEST_ARGS ?=

# Front-end libraries (htmx, uPlot…) come from npm with a committed lockfile and are copied
# where the pages load them; nothing is fetched at run time (web-assets/README.md).
ASSETS := web-assets
VENDOR := ingest_api/web/static/vendor

.PHONY: test demo lint bench screens system-deps demo-system-deps assets clean

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

## Install the pages' front-end libraries from npm (web-assets/package-lock.json).
assets: $(VENDOR)/.installed

$(VENDOR)/.installed: $(ASSETS)/package.json $(ASSETS)/package-lock.json $(ASSETS)/vendor.txt
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	  $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; }
	cd $(ASSETS) && npm ci --no-audit --no-fund --ignore-scripts
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)
	grep -Ev '^\s*(#|$$)' $(ASSETS)/vendor.txt | while read -r src dest; do \
	  cp "$(ASSETS)/node_modules/$$src" "$(VENDOR)/$$dest" || exit 1; done
	touch $@

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
test: system-deps $(VENV)/.installed-test assets
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## The main job on embedded defaults: five centers replay a day, figures are printed.
demo: demo-system-deps $(VENV)/.installed-demo assets
	$(VENV)/bin/welfare demo

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info $(VENDOR) \
	  $(ASSETS)/node_modules
