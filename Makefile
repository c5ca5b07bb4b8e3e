# The two commands of the README: `make demo` and `make test`.
PY ?= python3
PIP = $(PY) -m pip install --disable-pip-version-check -q

.PHONY: install test test-fast demo demo-train bench

install:
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'

test: install
	$(PY) -m pytest -q -ra

test-fast:
	$(PY) -m pytest -q -ra -m "not slow"
