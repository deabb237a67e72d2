# spcs-llm — developer entry points. `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
TORCH := torch==2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
LOCK := tests/requirements.lock
# uv (https://docs.astral.sh/uv/) installs the lock several times faster than pip; pinned, bootstrapped into the venv
# with pip. USE_UV=0 (or a machine where uv cannot be installed) installs the same lock with pip.
UV_VERSION := 0.13.10
USE_UV ?= 1
# The lock is exact for Python 3.11 on x86_64 Linux with the CPU build of torch. Its torch comes from PyTorch's CPU
# index (uv's --torch-backend cpu) or, where pip is configured with find-links (PIP_FIND_LINKS), from those.
LOCK_TORCH ?= $(if $(PIP_FIND_LINKS),$(addprefix --find-links ,$(PIP_FIND_LINKS)),--torch-backend cpu)
PLUGIN_FILES := plugin.json python-llms python-runnables custom-recipes python-lib parameter-sets code-env resource notebooks README.md LICENSE
PLUGIN_ID := $(shell $(PY) -c "import json;print(json.load(open('plugin.json'))['id'])")
PLUGIN_VERSION := $(shell $(PY) -c "import json;print(json.load(open('plugin.json'))['version'])")
export PYTHONPATH := $(CURDIR)/python-lib:$(CURDIR)/standin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv lock lint test unit integration reliability demo plugin bench soak clean

$(STAMP): $(LOCK) tests/requirements.txt code-env/python/spec/requirements.txt notebooks/requirements.txt
	$(PY) -m venv $(VENV)
	@if [ "$(USE_UV)" = 1 ] && ! $(BIN)/pip install -q --disable-pip-version-check uv==$(UV_VERSION); then \
		echo "uv $(UV_VERSION) could not be installed: pip installs $(LOCK) instead (slower, same packages)"; fi
	@# The CPU build of torch everywhere: where the default index would resolve the CUDA build (nvidia-* packages,
	@# several GB on an ordinary Linux machine), install from PyTorch's CPU wheel index instead. pip decides (it reads
	@# this machine's pip configuration); uv, when present, installs the wheel pip chose, several times faster.
	@# Then everything else at the lock's versions (its torch==2.13.0 is satisfied by the CPU build). uv does not read
	@# pip's configuration (mirrors, certificates): wherever it fails, pip does the same install.
	@pip="$(BIN)/pip install -q --disable-pip-version-check"; install="$$pip"; tool=pip; \
	if [ "$(USE_UV)" = 1 ] && [ -x $(BIN)/uv ]; then install="$(BIN)/uv pip install -q --python $(PYTHON)"; tool=uv; fi; \
	report="$$($(BIN)/pip install --dry-run --quiet --disable-pip-version-check --report - $(TORCH) 2>/dev/null)"; \
	if [ "$$(printf '%s' "$$report" | $(PYTHON) .ci/torch_source.py)" = "cpu-index" ]; then \
		echo "Installing the CPU build of torch from $(TORCH_CPU_INDEX)"; \
		set -- --no-deps --index-url $(TORCH_CPU_INDEX) $(TORCH); \
	else \
		url="$$(printf '%s' "$$report" | $(PYTHON) .ci/torch_source.py --url)"; \
		set -- --no-deps "$${url:+torch @ }$${url:-$(TORCH)}"; \
	fi; \
	$$install "$$@" || { [ $$tool = uv ] && echo "uv failed: pip installs torch and $(LOCK)" && \
		install="$$pip" && tool=pip && $$pip "$$@"; } && \
	echo "Installing $(LOCK) with $$tool" && \
	{ $$install -r $(LOCK) || { [ $$tool = uv ] && echo "uv failed: pip installs $(LOCK)" && $$pip -r $(LOCK); }; }
	printf '%s\n%s\n' "$(CURDIR)/python-lib" "$(CURDIR)/standin" > "$$($(PYTHON) -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/spcs_llm_dev.pth"
	printf '#!/bin/sh\nexec "%s" -m spcs_llm.cli "$$@"\n' "$(abspath $(PYTHON))" > $(BIN)/spcs-llm
	chmod +x $(BIN)/spcs-llm
	touch $(STAMP)

venv: $(STAMP)

# Regenerate tests/requirements.lock from tests/requirements.txt (and the two files it includes) after changing a
# range there. Ranges stay in code-env/python/spec/requirements.txt and notebooks/requirements.txt, which DSS reads.
lock:
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@# Written beside the lock and moved over it once checked; the current pins are uv's preferences (a changed range
	@# moves only what it must). torch is held to its CPU build (labelled +cpu on x86_64 Linux), so the lock gets
	@# that build's dependencies and none of CUDA's.
	@cp $(LOCK) $(LOCK).new 2>/dev/null || true; echo "$(TORCH)+cpu" > $(LOCK).torch
	$(BIN)/uv pip compile -q tests/requirements.txt --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		$(LOCK_TORCH) --constraint $(LOCK).torch --custom-compile-command "make lock" -o $(LOCK).new; \
		status=$$?; rm -f $(LOCK).torch; [ $$status = 0 ] || { rm -f $(LOCK).new; exit $$status; }
	@# ==2.13.0 matches the CPU build (2.13.0+cpu) and, on macOS, PyPI's build: make venv picks the source.
	sed -i.bak -E 's/^torch==([^+ ]+)\+cpu/torch==\1/' $(LOCK).new && rm -f $(LOCK).new.bak
	@if grep -n -i -E '^(nvidia-|cuda-|triton)' $(LOCK).new; then \
		rm -f $(LOCK).new; \
		echo "error: the new lock names CUDA packages: torch was resolved from its CUDA build ($(LOCK) is unchanged)." >&2; \
		echo "Fix: make lock LOCK_TORCH='--torch-backend cpu' (PyTorch's CPU index) or LOCK_TORCH='--find-links DIR' with the CPU wheel in DIR." >&2; \
		exit 1; \
	fi
	mv $(LOCK).new $(LOCK)

# The conventions in pyproject.toml, checked by tools (ARCHITECTURE.md): style and common bugs (ruff), the import rules
# between the packages (import-linter: it finds spcs_llm and spcs_standin on PYTHONPATH, set above, and nowhere else),
# the types of the shipped library (mypy). `make test` runs it first. Under 1 s with their caches, about 5 s on a fresh
# clone (mypy skips the large third-party stacks; pyproject.toml says which).
LINT_PATHS := python-lib standin tests bench python-llms python-runnables custom-recipes
lint: venv
	$(BIN)/ruff check --quiet --output-format concise $(LINT_PATHS)
	PYTHONPATH=$(CURDIR)/python-lib:$(CURDIR)/standin $(BIN)/lint-imports --no-logo
	$(BIN)/mypy

test: venv lint
	$(PYTHON) -m pytest tests -q -p no:cacheprovider

unit: venv
	$(PYTHON) -m pytest tests/unit -q -p no:cacheprovider

integration: venv
	$(PYTHON) -m pytest tests/integration -q -p no:cacheprovider

reliability: venv
	$(PYTHON) -m pytest tests/reliability -q -p no:cacheprovider

demo: venv
	$(PYTHON) -m spcs_standin.demo

bench: venv
	$(PYTHON) bench/embed_throughput.py
	$(PYTHON) bench/chat_overhead.py
	$(PYTHON) bench/cortex_stream.py
	$(PYTHON) bench/fast_embed.py
	$(PYTHON) bench/coalesce.py
	$(PYTHON) bench/storm.py
	$(PYTHON) bench/chat_fleet.py

soak: venv
	SPCS_LLM_SOAK_TEXTS=10000 $(PYTHON) -m pytest tests/reliability/test_soak.py -q -s -p no:cacheprovider

plugin:
	@# git archive zips HEAD: refuse while a shipped file has uncommitted (or untracked) changes.
	@if [ -n "$$(git status --porcelain -- $(PLUGIN_FILES))" ]; then \
		echo "error: uncommitted changes in the plugin's files would be left out of the zip:" >&2; \
		git status --short -- $(PLUGIN_FILES) >&2; \
		echo "Fix: commit them (git commit) and run make plugin again." >&2; \
		exit 1; \
	fi
	mkdir -p dist
	rm -f dist/dss-plugin-$(PLUGIN_ID)-$(PLUGIN_VERSION).zip
	git archive --format=zip --prefix=$(PLUGIN_ID)/ -o dist/dss-plugin-$(PLUGIN_ID)-$(PLUGIN_VERSION).zip HEAD $(PLUGIN_FILES)
	@echo "built dist/dss-plugin-$(PLUGIN_ID)-$(PLUGIN_VERSION).zip"

clean:
	rm -rf $(VENV) dist
