# The README's commands. Each target creates or updates .venv by itself (quick when nothing changed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.icemesh-installed

.PHONY: install demo test test-quick bench serve clean

install: $(STAMP)

# editable_mode=compat puts the source tree on sys.path, so dbt finds the top-level `dbt_*` plugin modules
# (dbt lists modules with pkgutil, which cannot see setuptools' default editable finder).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing icemesh and its dependencies into $(VENV) (a few minutes on a new machine; log: $(VENV)/install.log)"
	@$(PY) -m pip install --disable-pip-version-check --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(PY) -m pip install --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=compat >> $(VENV)/install.log 2>&1 || (tail -50 $(VENV)/install.log; exit 1)
	@touch $(STAMP)
	@echo "==> installed"

demo: $(STAMP)
	@$(PY) -m icemesh.demo

test: $(STAMP)
	@$(VENV)/bin/pytest -q -ra

test-quick: $(STAMP)
	@$(VENV)/bin/pytest -q -ra -m "not spark"

bench: $(STAMP)
	@$(PY) benchmarks/catalog.py
	@$(PY) benchmarks/governance_evaluator.py
	@$(PY) benchmarks/governance.py
	@$(PY) benchmarks/query_engines.py

serve: $(STAMP)
	@$(VENV)/bin/icemesh serve

clean:
	rm -rf $(VENV) .icemesh .pytest_cache benchmarks/results
