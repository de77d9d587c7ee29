# Sansuha — developer entry points. Everything runs inside ./.venv.
#
#   make test   create/refresh .venv, make sure PostgreSQL and Redis are up, run pytest
#               (PYTEST_ARGS passes through)
#   make run    the site on http://127.0.0.1:8000 with Redis, a Celery worker and the sweep;
#               Ctrl-C stops what it started
#   make lint   ruff check .
#   make clean  remove the install stamp and caches (keeps .venv and data)

PYTHON      ?= python3
VENV        := .venv
VENV_PY     := $(VENV)/bin/python
STAMP       := $(VENV)/.requirements.stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := test
.PHONY: test run lint clean distclean venv

venv: $(STAMP)

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when requirements.txt is newer than the last successful install.
$(STAMP): requirements.txt | $(VENV_PY)
	$(VENV_PY) -m pip install --disable-pip-version-check --upgrade pip \
		|| echo "warning: could not upgrade pip; continuing with the bundled one"
	$(VENV_PY) -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

# The site's tests run against a real PostgreSQL and Redis (see scripts/test-services.sh). Only for
# `make test`: `make run` keeps its own defaults (SQLite, Redis DB 0) unless the environment says.
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/sansuha
test: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15

test: $(STAMP)
	bash scripts/test-services.sh
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

run: $(STAMP)
	VENV_PY=$(VENV_PY) bash scripts/run.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -f $(STAMP)
	rm -rf .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# Also removes the virtualenv itself (the next make target recreates it).
distclean: clean
	rm -rf $(VENV)
