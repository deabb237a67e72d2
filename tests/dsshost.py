"""Load the plugin's ``llm.py`` files the way DSS does, with a stand-in for DSS's private ``dataiku`` module.

``dataiku.llm.python`` ships only inside DSS (dataiku-llm-plugin-contract.md §3.1), so tests register minimal
base classes under that name, then import ``python-llms/<id>/llm.py`` from its path and instantiate the one
``BaseLLM``/``BaseEmbeddingModel`` subclass it defines. Results are then checked with ``dataikuapi``'s real classes.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class BaseLLM:
    """Stand-in for dataiku.llm.python.BaseLLM: DSS calls __init__(), set_config(), then process*()."""


class BaseEmbeddingModel:
    """Stand-in for dataiku.llm.python.BaseEmbeddingModel."""


def install_fake_dataiku() -> None:
    if "dataiku.llm.python" in sys.modules and getattr(sys.modules["dataiku.llm.python"], "_spcs_fake", False):
        return
    dataiku = types.ModuleType("dataiku")
    llm = types.ModuleType("dataiku.llm")
    python = types.ModuleType("dataiku.llm.python")
    python.BaseLLM = BaseLLM
    python.BaseEmbeddingModel = BaseEmbeddingModel
    python._spcs_fake = True
    dataiku.llm = llm
    llm.python = python
    sys.modules.update({"dataiku": dataiku, "dataiku.llm": llm, "dataiku.llm.python": python})


def load_component(component_id: str, config: dict, plugin_config: dict | None = None):
    """Import python-llms/<component_id>/llm.py as DSS would and return a configured instance."""
    install_fake_dataiku()
    path = ROOT / "python-llms" / component_id / "llm.py"
    spec = importlib.util.spec_from_file_location(f"dss_component_{component_id.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bases = (BaseLLM, BaseEmbeddingModel)
    classes = [
        c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, bases) and c not in bases
    ]
    assert len(classes) == 1, f"{path} must define exactly one component class, found {classes}"
    instance = classes[0]()
    instance.set_config(config, plugin_config or {})
    return instance
