# The README's commands. Each target creates or updates .venv by itself (quick when nothing changed).
# editable_mode=compat puts the checkout on sys.path, so dbt finds the top-level dbt_icemesh plugin module.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.icemesh-installed
# Only for its jars: the AWS SDK that Spark's Iceberg runtime needs for S3 warehouses (icemesh.runtimes.spark).
# --no-deps because its Python requirements (pyarrow==22, ...) would downgrade ours; icemesh never imports it.
S3_JARS_WHEEL := bodo-iceberg-connector==2026.10

.PHONY: install chromium demo test test-quick bench bench-reliability serve clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing icemesh and its dependencies into $(VENV) (a few minutes on a new machine; log: $(VENV)/install.log)"
	@$(PY) -m pip install --disable-pip-version-check --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(PY) -m pip install --disable-pip-version-check --config-settings editable_mode=compat -e '.[dev]' >> $(VENV)/install.log 2>&1 || (tail -50 $(VENV)/install.log; exit 1)
	@$(PY) -m pip install --disable-pip-version-check --no-deps '$(S3_JARS_WHEEL)' >> $(VENV)/install.log 2>&1 || (tail -50 $(VENV)/install.log; exit 1)
	@$(PY) -m icemesh.runtimes.spark_classes || echo "==> Spark's class archive could not be built: Spark starts as usual, only slower"
	@command -v chromium >/dev/null || apt-get install -y chromium >> $(VENV)/install.log 2>&1 || echo "==> chromium could not be installed: the dbt docs browser test will skip"
	@touch $(STAMP)
	@echo "==> installed"

# SCALE=5 make demo: more rows (1 is about 9,400 raw rows). The state stays in .icemesh/demo until the next run.
demo: $(STAMP)
	@$(PY) -m icemesh.demo $(if $(SCALE),--scale $(SCALE))

# The portal's and dbt docs' browser tests drive Debian's Chromium (playwright never downloads one): installed here
# when missing, only as root with apt-get; otherwise those tests skip with the reason.
chromium:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get install -y chromium > $(VENV)/chromium-install.log 2>&1; } || \
		echo "==> chromium is not installed (needs root and apt-get): the browser tests will skip"

# Both cores, a test module per worker at a time (module fixtures start one server each); the slowest listed at the end.
test: $(STAMP) chromium
	@$(VENV)/bin/pytest -q -ra -n 2 --dist loadfile --durations=15

# The fast tier: the catalog's app in process, the pure governance model, compat checks (about a minute).
test-quick: $(STAMP)
	@$(VENV)/bin/pytest -q -ra -m inprocess

bench: $(STAMP)
	@$(PY) benchmarks/catalog.py
	@$(PY) benchmarks/governance_evaluator.py
	@$(PY) benchmarks/governance.py
	@$(PY) benchmarks/query_engines.py
	@$(PY) benchmarks/dbt_materialization.py
	@$(PY) benchmarks/dbt_parse.py
	@$(PY) benchmarks/commit_checks.py
	@$(PY) benchmarks/lf_revocation.py
	@$(PY) benchmarks/events.py
	@$(PY) benchmarks/portal.py

# Long reliability runs (about 30-40 minutes on 2 cores): contention, kill -9 cycles, fuzzing, a 10-minute soak.
bench-reliability: $(STAMP)
	@$(PY) benchmarks/contention.py
	@$(PY) benchmarks/crash.py
	@$(PY) benchmarks/fuzz.py
	@$(PY) benchmarks/soak.py

serve: $(STAMP)
	@$(VENV)/bin/icemesh serve

clean:
	rm -rf $(VENV) .icemesh .pytest_cache benchmarks/results
