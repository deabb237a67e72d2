"""Fakes of the ``dataiku`` modules that exist only inside DSS, for loading the plugin's macros and recipe as DSS
would. Each ``install_*`` registers one module in ``sys.modules`` (beside the stand-in harness's
``dataiku.llm.python``) and is undone by ``uninstall``.

The Snowpark helper: inside DSS, ``dataiku.snowpark.DkuSnowpark().get_session(connection_name)`` builds a Snowpark
session from a DSS Snowflake connection (Dataiku developer guide, "Snowpark"; used that way by Dataiku's
``dss-plugin-visual-snowparkml``). Here it returns the session a test supplies, and records the connection names
asked for.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

_INSTALLED: list[str] = []


def _module(name: str) -> types.ModuleType:
    """The module ``name``, created (with its parents) if absent, and remembered for ``uninstall``."""
    parent_name, _, child = name.rpartition(".")
    if parent_name:
        parent = _module(parent_name)
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        sys.modules[name] = module
        _INSTALLED.append(name)
        if parent_name:
            setattr(parent, child, module)
    return module


class SnowparkHelper:
    """``dataiku.snowpark.DkuSnowpark``: a session per DSS connection name, from the test's factory."""

    factory: Callable[[str], Any] | None = None
    connections_asked: list[str] = []

    def get_session(self, connection_name: str, *args: Any, **kwargs: Any) -> Any:
        if SnowparkHelper.factory is None:
            raise RuntimeError("No fake Snowpark session installed: call install_snowpark(factory) first.")
        SnowparkHelper.connections_asked.append(connection_name)
        return SnowparkHelper.factory(connection_name)


def install_snowpark(factory: Callable[[str], Any]) -> type[SnowparkHelper]:
    """Make ``dataiku.snowpark.DkuSnowpark().get_session(name)`` return ``factory(name)``."""
    module = _module("dataiku.snowpark")
    SnowparkHelper.factory = factory
    SnowparkHelper.connections_asked = []
    module.DkuSnowpark = SnowparkHelper  # type: ignore[attr-defined]
    return SnowparkHelper


def uninstall() -> None:
    """Remove every module the ``install_*`` functions created."""
    while _INSTALLED:
        sys.modules.pop(_INSTALLED.pop(), None)
    SnowparkHelper.factory = None
