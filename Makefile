# Portail — the two commands are `make run` and `make test` (README, SPEC §10.1).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-postgres lint translations migration bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	@# OpenLDAP slapd for the legacy-directory tests (SPEC §4.6): the Debian package, its own service stopped.
	@command -v slapd >/dev/null || test -x /usr/sbin/slapd || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd ldap-utils && \
	  { $$SUDO service slapd stop || true; }; }
	touch $@

translations: $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d idp/translations >/dev/null

var:
	mkdir -p var

## make run: build .venv, migrate, seed the demo, serve the IdP on 127.0.0.1:8000 and REPERNET on :8002
run: $(STAMP) translations var
	$(BIN)/idp db upgrade
	$(BIN)/idp demo seed
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/python -m apps.repernet --host 127.0.0.1 --port 8002 & \
	$(BIN)/idp serve --host 127.0.0.1 --port 8000

lint: $(TEST_STAMP)
	$(BIN)/ruff check idp shared apps tests bench

## make test: the whole suite on SQLite (set IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL for the variants)
test: $(TEST_STAMP) translations lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: $(TEST_STAMP) translations
	IDP_TEST_DATABASE_URL=$(PG_URL) IDP_TEST_REDIS_URL=$(REDIS_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

## regenerate the schema migration after a model change (unreleased schema: one initial revision)
migration: $(STAMP)
	$(BIN)/python -m idp.migrations.regenerate

bench: $(TEST_STAMP) translations
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var
