# The two commands of the README: `make demo` (set-up + the main job) and
# `make test` (set-up + the test suite). `make install` is the set-up alone.
PY := .venv/bin/python

.PHONY: install test demo
install:
	bash tools/setup_env.sh

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) tools/demo.py
