"""Run a plugin macro as DSS does: load ``python-runnables/<id>/runnable.py`` from its path, build its class with
``(project_key, config, plugin_config)``, ask ``get_progress_target()``, call ``run(progress_callback)``; and read the
HTML it returns as a person would (its text, its tables, its chart)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import dataiku_fakes

ROOT = Path(__file__).resolve().parents[3]
RUNNABLES = ROOT / "python-runnables"
MACROS = sorted(path.name for path in RUNNABLES.iterdir() if (path / "runnable.json").exists())


def descriptor(macro: str) -> dict[str, Any]:
    return json.loads((RUNNABLES / macro / "runnable.json").read_text(encoding="utf-8"))


def defaults(macro: str) -> dict[str, Any]:
    """The form as DSS fills it before the user types anything: each parameter's default value."""
    return {p["name"]: p["defaultValue"] for p in descriptor(macro)["params"] if "name" in p and "defaultValue" in p}


def load_runnable(macro: str) -> type:
    path = RUNNABLES / macro / "runnable.py"
    spec = importlib.util.spec_from_file_location(f"runnable_{macro.replace('-', '_')}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MyRunnable


@dataclass
class MacroRun:
    html: str
    target: Any
    progress: list[int]

    @property
    def page(self) -> ReadPage:
        return read(self.html)


def run_macro(macro: str, **config: Any) -> MacroRun:
    """The macro with its defaults overridden by ``config``, as DSS runs it."""
    runnable = load_runnable(macro)("PROJ", {**defaults(macro), **config}, {})
    target = runnable.get_progress_target()
    seen: list[int] = []
    html = runnable.run(seen.append)
    assert isinstance(html, str)
    return MacroRun(html, target, seen)


@dataclass
class ReadPage(HTMLParser):
    """The text of the page (one string), its table rows, its SVG bars and the classes used."""

    texts: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    bars: list[str] = field(default_factory=list)  # each bar's <title>
    tags: list[str] = field(default_factory=list)
    _cell: list[str] | None = None
    _in_style: bool = False
    _in_bar: bool = False

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "style":
            self._in_style = True
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "rect" and ("class", "bar") in attrs:
            self._in_bar = True
            self.bars.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "rect":
            self._in_bar = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            return
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_bar:
            self.bars[-1] += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


def read(html: str) -> ReadPage:
    page = ReadPage()
    page.feed(html)
    page.close()
    return page


def dss_with(session: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """Inside a fixture: the DSS-only modules faked, the Snowpark helper handing out ``session``."""
    monkeypatch.delenv("SPCS_LLM_SESSION_FACTORY", raising=False)
    dataiku_fakes.install_runnables()
    helper = dataiku_fakes.install_snowpark(lambda name: session)
    yield helper
    dataiku_fakes.uninstall()
