# Portail — the two commands are `make run` and `make test` (README, SPEC §10.1).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# where the test set-up looks for / installs OpenLDAP (overridable to try the recipe)
SLAPD ?= /usr/sbin/slapd
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
NGINX ?= /usr/sbin/nginx
POLICY_RC ?= /usr/sbin/policy-rc.d
APT_GET ?= apt-get
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-postgres lint translations messages migration bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	@# Debian packages for the tests: OpenLDAP's slapd (legacy directory, SPEC §4.6), Chromium with
	@# its driver (SSO journeys in a real browser, SPEC §11) and nginx (the reverse proxy in front of two
	@# IdP instances, tests/test_topology.py). Their own services are kept from starting (policy-rc.d
	@# while installing) and stopped: the tests run their own slapd and nginx.
	@MISSING="$$(command -v slapd >/dev/null || test -x $(SLAPD) || echo slapd ldap-utils) \
	  $$(test -x $(CHROMIUM) && test -x $(CHROMEDRIVER) || echo chromium chromium-driver) \
	  $$(test -x $(NGINX) || echo nginx)"; \
	test -z "$$(echo $$MISSING)" || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); POLICY=$(POLICY_RC); OWN=; \
	  if ! test -e $$POLICY; then \
	    printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$POLICY >/dev/null && $$SUDO chmod 755 $$POLICY && OWN=1; fi; \
	  $$SUDO $(APT_GET) update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q --no-install-recommends $$MISSING; STATUS=$$?; \
	  test -z "$$OWN" || $$SUDO rm -f $$POLICY; \
	  $$SUDO service slapd stop >/dev/null 2>&1 || true; \
	  $$SUDO service nginx stop >/dev/null 2>&1 || true; \
	  exit $$STATUS; }
	touch $@

## the English catalogs (French is the source text): the IdP's, the shell's, and each app's, which
## Flask-Babel merges with the shell's when it loads them (shared/i18n.py)
APPS := sam repernet catalogue
CATALOGS := idp/translations shared/translations $(foreach app,$(APPS),apps/$(app)/translations)
translations: $(STAMP)
	@for dir in $(CATALOGS); do $(BIN)/pybabel -q compile --use-fuzzy -d $$dir || exit 1; done

## make messages: extract the shell's and the apps' texts and merge them into their catalogs (then
## translate the new entries; tests/test_translations.py lists what is missing)
messages: $(STAMP)
	@for dir in shared $(addprefix apps/,$(APPS)); do mkdir -p $$dir/translations && \
	  $(BIN)/pybabel -q extract -F babel-apps.cfg -k _l -k lazy_gettext -k N_ -o $$dir/translations/messages.pot $$dir \
	  && if test -f $$dir/translations/en/LC_MESSAGES/messages.po; \
	     then $(BIN)/pybabel -q update --ignore-obsolete -i $$dir/translations/messages.pot -d $$dir/translations -l en; \
	     else $(BIN)/pybabel -q init -i $$dir/translations/messages.pot -d $$dir/translations -l en; fi \
	  && rm $$dir/translations/messages.pot || exit 1; done

var:
	mkdir -p var

## make run: build .venv, migrate, seed the demo, serve the IdP on 127.0.0.1:8000, SAM on :8001,
## REPERNET on :8002 and the Catalogue on :8003 (each app migrates its own database first)
run: export SAM_DEMO = true
run: export REPERNET_DEMO = true
run: export CATALOGUE_DEMO = true
run: $(STAMP) translations var
	$(BIN)/idp db upgrade
	$(BIN)/idp demo seed
	@for app in $(APPS); do $(BIN)/python -m apps.$$app db upgrade || exit 1; done
	@echo "Portail (IdP)  : http://127.0.0.1:8000/"
	@echo "SAM            : http://127.0.0.1:8001/   (consultations : http://127.0.0.1:8001/consultations)"
	@echo "REPERNET       : http://127.0.0.1:8002/"
	@echo "Catalogue      : http://127.0.0.1:8003/"
	@echo "Comptes de démonstration : voir README.md (ex. claire.bernard@region.test / Region-Bernard-2026!)"
	@# Ctrl-C: stop the apps by their ids, once (`kill 0` from an EXIT trap re-entered itself until the
	@# shell crashed: make printed "Segmentation fault"), and end quietly.
	@trap 'trap - INT TERM EXIT; kill $$PIDS 2>/dev/null; wait; exit 0' INT TERM EXIT; \
	$(BIN)/python -m apps.sam serve --port 8001 & PIDS="$$!"; \
	$(BIN)/python -m apps.repernet serve --port 8002 & PIDS="$$PIDS $$!"; \
	$(BIN)/python -m apps.catalogue serve --port 8003 & PIDS="$$PIDS $$!"; \
	$(BIN)/idp serve --host 127.0.0.1 --port 8000

lint: $(TEST_STAMP)
	$(BIN)/ruff check idp shared apps tests bench

## make test: the whole suite on SQLite (set IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL for the variants)
test: $(TEST_STAMP) translations lint
	CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) NGINX=$(NGINX) $(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: $(TEST_STAMP) translations
	IDP_TEST_DATABASE_URL=$(PG_URL) IDP_TEST_REDIS_URL=$(REDIS_URL) CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) NGINX=$(NGINX) \
	  $(BIN)/python -m pytest $(PYTEST_ARGS)

## regenerate the schema migration after a model change (unreleased schema: one initial revision)
migration: $(STAMP)
	$(BIN)/python -m idp.migrations.regenerate

bench: $(TEST_STAMP) translations
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var

## axe-core for the accessibility tests (RGAA 4, issue 16): the npm package, under .venv/axe; npm is
## Debian's when missing.
AXE_CORE := $(VENV)/axe/node_modules/axe-core/axe.min.js
$(AXE_CORE): | $(BIN)/python
	@command -v npm >/dev/null || { SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO $(APT_GET) update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q --no-install-recommends npm; }
	npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@4
	test -f $@ && touch $@
test test-postgres: $(AXE_CORE)
test test-postgres: export AXE_CORE := $(abspath $(AXE_CORE))
