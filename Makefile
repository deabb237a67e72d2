# spcs-llm — developer entry points. `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
PLUGIN_ID := $(shell $(PY) -c "import json;print(json.load(open('plugin.json'))['id'])")
PLUGIN_VERSION := $(shell $(PY) -c "import json;print(json.load(open('plugin.json'))['version'])")
export PYTHONPATH := $(CURDIR)/python-lib
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv test unit integration reliability demo plugin bench soak clean

$(STAMP): tests/requirements.txt code-env/python/spec/requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
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

soak: venv
	SPCS_LLM_SOAK_TEXTS=10000 $(PYTHON) -m pytest tests/reliability/test_soak.py -q -s -p no:cacheprovider

plugin:
	mkdir -p dist
	rm -f dist/dss-plugin-$(PLUGIN_ID)-$(PLUGIN_VERSION).zip
	git archive --format=zip --prefix=$(PLUGIN_ID)/ -o dist/dss-plugin-$(PLUGIN_ID)-$(PLUGIN_VERSION).zip HEAD \
		plugin.json python-llms python-lib parameter-sets code-env resource notebooks README.md
	@echo "built dist/dss-plugin-$(PLUGIN_ID)-$(PLUGIN_VERSION).zip"

clean:
	rm -rf $(VENV) dist
