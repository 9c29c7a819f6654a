# The two commands of the README: `make demo` (set-up + the main job) and
# `make test` (set-up + the test suite). `make install` is the set-up alone.
# `make test-oldest` runs the suite on the oldest supported stack (torch
# 2.1.2, Python 3.8, in .venv-torch2.1/); CI runs both.
PY := .venv/bin/python
PY_OLDEST := .venv-torch2.1/bin/python

.PHONY: install install-oldest test test-oldest demo lock lock-oldest
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

# `make lock` (`make lock-oldest`), after a change of the stack that `make
# test` (`make test-oldest`) proved: the venv's `pip freeze`, less pip (the
# venv's own) and editable installs (mmfca), becomes requirements/<stack>.lock,
# which every install of the set-up is given (pip -c); then the set-up runs
# again, checks the venv against it and stamps the proof. What pip lacks is
# only the header (docs/installation.md, "The lock").
LOCK_HEADER := \# Every version the set-up installs (pip -c), frozen from a venv it built\n\# and proved; Linux x86_64, CPython. Refresh: `make lock` (stack readme) or\n\# `make lock-oldest` (oldest), as docs/installation.md says.\n
freeze = { printf '$(LOCK_HEADER)' && $(1) -m pip freeze --all --exclude pip \
	--exclude-editable; } > requirements/$(2).lock.part && \
	mv requirements/$(2).lock.part requirements/$(2).lock

lock: install
	$(call freeze,$(PY),readme)
	bash tools/setup_env.sh

lock-oldest: install-oldest
	$(call freeze,$(PY_OLDEST),oldest)
	MMFCA_STACK=oldest bash tools/setup_env.sh
