# spcs-llm — developer entry points. `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
TORCH := torch==2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
PLUGIN_FILES := plugin.json python-llms python-lib parameter-sets code-env resource notebooks README.md LICENSE
PLUGIN_ID := $(shell $(PY) -c "import json;print(json.load(open('plugin.json'))['id'])")
PLUGIN_VERSION := $(shell $(PY) -c "import json;print(json.load(open('plugin.json'))['version'])")
export PYTHONPATH := $(CURDIR)/python-lib
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv test unit integration reliability demo plugin bench soak clean

$(STAMP): tests/requirements.txt code-env/python/spec/requirements.txt notebooks/requirements.txt
	$(PY) -m venv $(VENV)
	@# The CPU build of torch everywhere: where the default index would resolve the CUDA build (nvidia-* packages,
	@# several GB on an ordinary Linux machine), install from PyTorch's CPU wheel index instead.
	@if [ "$$($(BIN)/pip install --dry-run --quiet --disable-pip-version-check --report - $(TORCH) 2>/dev/null \
		| $(PYTHON) .ci/torch_source.py)" = "cpu-index" ]; then \
		echo "Installing the CPU build of torch from $(TORCH_CPU_INDEX)"; \
		$(BIN)/pip install -q --disable-pip-version-check --index-url $(TORCH_CPU_INDEX) $(TORCH); \
	else \
		$(BIN)/pip install -q --disable-pip-version-check $(TORCH); \
	fi
	$(BIN)/pip install -q --disable-pip-version-check -r tests/requirements.txt
	echo "$(CURDIR)/python-lib" > "$$($(PYTHON) -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/spcs_llm_dev.pth"
	printf '#!/bin/sh\nexec "%s" -m spcs_llm.cli "$$@"\n' "$(abspath $(PYTHON))" > $(BIN)/spcs-llm
	chmod +x $(BIN)/spcs-llm
	touch $(STAMP)

venv: $(STAMP)

test: venv
	$(PYTHON) -m pytest tests -q -p no:cacheprovider

unit: venv
	$(PYTHON) -m pytest tests/unit -q -p no:cacheprovider

integration: venv
	$(PYTHON) -m pytest tests/integration -q -p no:cacheprovider

reliability: venv
	$(PYTHON) -m pytest tests/reliability -q -p no:cacheprovider

demo: venv
	$(PYTHON) -m spcs_llm.local.demo

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
