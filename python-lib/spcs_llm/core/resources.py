"""Locate the plugin's read-only ``resource/`` folder, both inside DSS and from a source checkout."""

from __future__ import annotations

import os
from pathlib import Path


def resource_dir() -> Path:
    """The plugin's resource folder.

    DSS exposes a plugin's resource folder to other component types through DKU_CUSTOM_RESOURCE_FOLDER; that
    LLM components get it too is inferred (Dataiku's plugin reference docs name it for recipes and connectors
    only), so we fall back to the
    folder beside python-lib, which is where the plugin zip puts it.
    """
    from_env = os.environ.get("DKU_CUSTOM_RESOURCE_FOLDER")
    if from_env and Path(from_env).is_dir():
        return Path(from_env)
    return Path(__file__).resolve().parents[3] / "resource"


def resource_path(*parts: str) -> Path:
    return resource_dir().joinpath(*parts)
