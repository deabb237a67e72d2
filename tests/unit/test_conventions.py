"""The conventions of ARCHITECTURE.md are checked by tools, in ``make test``: ``make lint`` (ruff, import-linter,
mypy) runs before the tests, and the import contracts in pyproject.toml refuse a module that breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
LINT_TOOLS = ("ruff check", "lint-imports", "mypy")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_runs_the_lint_before_the_tests():
    # -n prints the recipes without running them (the venv's too, when its stamp is older than the lock).
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "test"], capture_output=True, text=True, check=True)
    lines = dry.stdout.splitlines()

    def first(text: str) -> int:
        return next(index for index, line in enumerate(lines) if text in line)

    steps = [first(tool) for tool in LINT_TOOLS]
    assert steps == sorted(steps) and steps[-1] < first("-m pytest tests")


def test_make_lint_checks_every_tree_with_python_code():
    makefile = (ROOT / "Makefile").read_text()
    lint_paths = next(line for line in makefile.splitlines() if line.startswith("LINT_PATHS :="))
    trees = {path.name for path in ROOT.iterdir()
             if path.is_dir() and not path.name.startswith(".") and path.name != "dist" and any(path.rglob("*.py"))}
    assert {"python-lib", "standin", "tests", "bench", "python-llms"} <= trees
    assert set(lint_paths.split(":=", 1)[1].split()) == trees


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is in tests/requirements.txt (make venv)")
def test_the_import_contracts_refuse_a_core_module_that_imports_a_backend(tmp_path):
    """A copy of the library with one wrong import: lint-imports names the contract and the import line."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "python-lib", tmp_path / "python-lib", ignore=ignore)
    shutil.copytree(ROOT / "standin", tmp_path / "standin", ignore=ignore)
    (tmp_path / "python-lib" / "spcs_llm" / "core" / "wrong_way.py").write_text(
        '"""A core module reaching into a backend."""\n\nfrom spcs_llm.spcs.templates import render_chat\n')
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "python-lib"),
                                                                str(tmp_path / "standin")])}
    result = subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", str(ROOT / "pyproject.toml")],
                            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout
    assert "imports no backend and no tool BROKEN" in " ".join(result.stdout.split())
    assert "spcs_llm.core.wrong_way -> spcs_llm.spcs.templates (l.3)" in result.stdout
