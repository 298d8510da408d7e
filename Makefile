# portside: `make run` and `make test` are the whole set-up on a machine with Python 3 and make.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test lint venv clean screenshots bench daemons

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PY) -m venv $(VENV) || { echo "cannot create a virtualenv: install python3-venv (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	@$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@

venv: $(STAMP) ## create .venv and install portside with the test tools

run: $(STAMP) ## start the dashboard (ARGS="--interval 1 :3000")
	$(BIN)/portside $(ARGS)

# Process managers the tests run for real, cached outside the checkout (npm's pm2).
NODE_CACHE ?= $(HOME)/.cache/portside-test/node
PM2 := $(NODE_CACHE)/node_modules/.bin/pm2

$(PM2):
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || { echo "make test needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
	@mkdir -p $(NODE_CACHE)
	npm install --prefix $(NODE_CACHE) --no-audit --no-fund --silent pm2@5

# The real container engine and init system the tests run: Debian's dockerd, and systemd
# booted in systemd-nspawn on a root built once with debootstrap, cached outside the checkout.
NSPAWN_ROOT ?= $(HOME)/.cache/portside-test/nspawn-root
DEBIAN_MIRROR ?= http://deb.debian.org/debian
DAEMON_PKGS := docker.io busybox-static iptables debootstrap systemd-container

daemons: ## install dockerd and systemd-nspawn, and build the nspawn root (root only)
	@if [ "$$(id -u)" != 0 ]; then echo "the container and systemd tests need root: skipped" >&2; exit 0; fi; \
	missing=""; for t in dockerd busybox iptables debootstrap systemd-nspawn; do command -v $$t >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DAEMON_PKGS) >/dev/null; fi; \
	if [ ! -x $(NSPAWN_ROOT)/usr/lib/systemd/systemd ]; then \
	  rm -rf $(NSPAWN_ROOT).tmp && mkdir -p $$(dirname $(NSPAWN_ROOT)) && \
	  debootstrap --variant=minbase --include=systemd,systemd-sysv,python3,iproute2,procps bookworm $(NSPAWN_ROOT).tmp $(DEBIAN_MIRROR) >/dev/null && \
	  for u in console-getty.service getty.target systemd-networkd.service systemd-resolved.service systemd-timesyncd.service; do \
	    ln -sf /dev/null $(NSPAWN_ROOT).tmp/etc/systemd/system/$$u; done && \
	  mv $(NSPAWN_ROOT).tmp $(NSPAWN_ROOT); fi

test: $(STAMP) $(PM2) daemons ## run the whole test suite (real sockets, processes and daemons)
	@# ss for the cross-checks, tmux for the dashboard in a real terminal, venv for the wheel tests.
	@missing=""; command -v ss >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	$(PY) -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "make test needs:$$missing (install them, or run make test as root)" >&2; exit 1; fi; fi
	PORTSIDE_PM2=$(PM2) PORTSIDE_NSPAWN_ROOT=$(NSPAWN_ROOT) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check app tests
	$(BIN)/mypy

screenshots: $(STAMP) ## render screenshots/*.png from the demo data
	@command -v rsvg-convert >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "mono" || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq librsvg2-bin fonts-dejavu-core >/dev/null; } || { echo "install librsvg2-bin and a monospace font (fonts-dejavu-core)" >&2; exit 1; }
	$(BIN)/python tests/make_screenshots.py

bench: $(STAMP) ## measure against ss, lsof, psutil, htop; writes tests/bench/RESULTS.md (~25 min)
	@missing=""; for t in ss lsof htop tmux; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq iproute2 lsof htop tmux >/dev/null; \
	  else echo "bench needs:$$missing (install them, or run make bench as root)" >&2; exit 1; fi; fi
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	@# Measure what an installed copy runs: compiled modules, even where PYTHONDONTWRITEBYTECODE is set.
	$(BIN)/python -m compileall -q app >/dev/null
	$(BIN)/python tests/bench/run.py

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
