"""Fakes of the ``dataiku`` modules that exist only inside DSS, for loading the plugin's macros and recipe as DSS
would. Each ``install_*`` registers one module in ``sys.modules`` (beside the stand-in harness's
``dataiku.llm.python``) and is undone by ``uninstall``.

The Snowpark helper: inside DSS, ``dataiku.snowpark.DkuSnowpark().get_session(connection_name)`` builds a Snowpark
session from a DSS Snowflake connection (Dataiku developer guide, "Snowpark"; used that way by Dataiku's
``dss-plugin-visual-snowparkml``). Here it returns the session a test supplies, and records the connection names
asked for.

The macros' base class: ``dataiku.runnables.Runnable``, built as ``Runnable(project_key, config, plugin_config)``
(Dataiku docs, ``plugins/reference/macros``); DSS calls ``get_progress_target()`` then ``run(progress_callback)``.
And ``dataiku.api_client()``, the public API client a macro uses inside DSS, returning the test's client.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

_INSTALLED: list[str] = []
_ATTRIBUTES: list[tuple[types.ModuleType, str]] = []  # attributes set on modules the fakes did not create


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


class Runnable:
    """``dataiku.runnables.Runnable``: keeps what DSS passes to a macro's constructor."""

    def __init__(self, project_key: str, config: dict[str, Any], plugin_config: dict[str, Any]) -> None:
        self.project_key = project_key
        self.config = config
        self.plugin_config = plugin_config

    def get_progress_target(self) -> tuple[int, str] | None:
        return None

    def run(self, progress_callback: Callable[[int], None]) -> Any:
        raise NotImplementedError


def install_runnables() -> type[Runnable]:
    """Make ``from dataiku.runnables import Runnable`` work as inside DSS."""
    _module("dataiku.runnables").Runnable = Runnable  # type: ignore[attr-defined]
    return Runnable


def install_api_client(factory: Callable[[], Any]) -> None:
    """Make ``dataiku.api_client()`` return ``factory()`` (e.g. a ``dataikuapi.DSSClient`` against ``responses``)."""
    module = _module("dataiku")
    if "dataiku" not in _INSTALLED:
        _ATTRIBUTES.append((module, "api_client"))
    module.api_client = factory  # type: ignore[attr-defined]


def uninstall() -> None:
    """Remove every module the ``install_*`` functions created, and the attributes they set on others."""
    while _INSTALLED:
        sys.modules.pop(_INSTALLED.pop(), None)
    while _ATTRIBUTES:
        module, name = _ATTRIBUTES.pop()
        if hasattr(module, name):
            delattr(module, name)
    SnowparkHelper.factory = None
