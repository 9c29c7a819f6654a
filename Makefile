# The two commands of the README: `make demo` (set-up + the main job) and
# `make test` (set-up + the test suite). `make install` is the set-up alone.
# `make test-oldest` runs the suite on the oldest supported stack (torch
# 2.1.2, Python 3.8, in .venv-torch2.1/); CI runs both.
PY := .venv/bin/python
PY_OLDEST := .venv-torch2.1/bin/python

.PHONY: install install-oldest test test-oldest demo
install:
	bash tools/setup_env.sh

install-oldest:
	MMFCA_STACK=oldest bash tools/setup_env.sh

test: install
	$(PY) -m pytest -q tests

test-oldest: install-oldest
	$(PY_OLDEST) -m pytest -q tests

demo: install
	$(PY) tools/demo.py
