"""Every command-line option that an error's fix names exists: a fix that tells users to pass an option the CLI
does not have is a dead end (one said --replace-service; the option is --replace). Scans the string literals given
as ``fix=`` in the shipped deployment library and CLI; a command quoted in backticks is another program's (or a
whole command line, which the macros and the recipe leave as written)."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from spcs_llm.cli import build_parser

ROOT = Path(__file__).resolve().parents[3] / "python-lib" / "spcs_llm"
OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")
# Flags of other programs that fixes quote on purpose: vLLM's own arguments, passed through --engine-arg.
NOT_OURS = {"--enforce-eager"}


def _cli_options() -> set[str]:
    options: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            options.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser([name for name in _commands() if name != "local"]))
    return options


def _commands() -> list[str]:
    from spcs_llm.cli import COMMANDS

    return list(COMMANDS)


def _fix_texts(path: Path) -> list[tuple[int, str]]:
    texts = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "fix" or \
                isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "default_fix" for t in node.targets):
            for part in ast.walk(node.value):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    texts.append((part.lineno, part.value))
    return texts


def test_every_option_a_fix_names_is_an_option_of_the_cli():
    known = _cli_options() | NOT_OURS
    unknown = []
    for path in sorted([*(ROOT / "deploy").rglob("*.py"), *(ROOT / "cli").rglob("*.py")]):
        for line, text in _fix_texts(path):
            outside_backticks = " ".join(text.split("`")[::2])
            unknown += [f"{path.relative_to(ROOT)}:{line}: {option}" for option in OPTION.findall(outside_backticks)
                        if option not in known]
    assert unknown == []


def test_the_scan_finds_the_fixes_it_checks():
    texts = [text for path in (ROOT / "deploy" / "services").glob("*.py") for _, text in _fix_texts(path)]
    assert any("--instance-family" in text for text in texts)
