# cartes — the two commands: `make demo` and `make test`. Both install what they need.

VENV := .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := softhsm2 opensc postgresql sqlite3 python3-venv nginx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR := $(CURDIR)/.demo
DEMO_HOLDERS ?= 3000

.PHONY: all install system test lint typecheck demo bench clean

all: install

install: system $(VENV)/.installed

# Debian packages: installed only when missing.
system:
	@missing=""; \
	for package in $(SYSTEM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" \
	        || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "Installation des paquets système :$$missing"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The whole suite, on SQLite and on a throwaway PostgreSQL server.
test: lint typecheck
	CARTES_TEST_REQUIRE_POSTGRES=1 CARTES_TEST_REQUIRE_SOFTHSM=1 CARTES_TEST_REQUIRE_NGINX=1 \
	    scripts/with-postgres $(BIN)/pytest -q

# A fresh demo under .demo/: SQLite database, synthetic district, three SoftHSM2 cards
# "in the reader" with the trust that recognises them; then, in a terminal, the SAR's
# screen (the terminal UI) on it; elsewhere (a pipe, CI) the summary and the reader.
demo: install
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/python -m fixtures.demo $(DEMO_DIR)
	@export CARTES_CONFIG=$(DEMO_DIR)/cartes.toml; \
	$(BIN)/cartes init && \
	$(BIN)/cartes demo --titulaires $(DEMO_HOLDERS) && \
	$(BIN)/cartes importer $(DEMO_DIR)/titulaires-des-cartes.csv && \
	echo && echo "Pour continuer : export CARTES_CONFIG=$(DEMO_DIR)/cartes.toml" && \
	if [ -t 0 ] && [ -t 1 ]; then \
	    $(BIN)/cartes tui; \
	else \
	    echo && $(BIN)/cartes resume && echo && $(BIN)/cartes lecteurs; \
	fi

bench: install
	$(BIN)/python benchmarks/import_csv.py
	$(BIN)/python benchmarks/listing.py
	$(BIN)/python benchmarks/validation.py
	$(BIN)/python benchmarks/scan.py
	$(BIN)/python benchmarks/alerts.py
	$(BIN)/python benchmarks/search.py
	$(BIN)/python benchmarks/tui.py
	$(BIN)/python benchmarks/web.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) benchmarks/.cache .pytest_cache .ruff_cache .mypy_cache
