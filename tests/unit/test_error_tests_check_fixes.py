"""Every error names its fix, so a test that expects one of our errors checks what it says (issue 19).

A ``with pytest.raises(<project error>)`` block must either bind the error (``as caught``) and use it afterwards
(``assert_fix(caught, ...)`` from tests/error_checks.py, or an assertion on its message or fix), or pass ``match=``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def _base_name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def project_errors() -> set[str]:
    """SpcsLlmError and every class in python-lib that derives from it, by name."""
    bases: dict[str, set[str]] = {}
    for path in (ROOT / "python-lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(filter(None, map(_base_name, node.bases)))
    errors = {"SpcsLlmError"}
    while grown := {name for name, parents in bases.items() if name not in errors and parents & errors}:
        errors |= grown
    return errors


def _raises_call(node: ast.expr) -> ast.Call | None:
    if isinstance(node, ast.Call) and _base_name(node.func) == "raises" and node.args:
        return node
    return None


def _expected_names(call: ast.Call) -> set[str]:
    expected = call.args[0]
    items = expected.elts if isinstance(expected, ast.Tuple) else [expected]
    return set(filter(None, map(_base_name, items)))


def unchecked_raises(source: str, errors: set[str]) -> list[int]:
    """The line of each pytest.raises(<one of errors>) block whose error is never looked at."""
    tree = ast.parse(source)
    found: set[int] = set()  # a set: a nested function's blocks are walked from the outer one too
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        loaded = {node.id for node in ast.walk(function)
                  if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        for block in ast.walk(function):
            if not isinstance(block, (ast.With, ast.AsyncWith)):
                continue
            for item in block.items:
                call = _raises_call(item.context_expr)
                if call is None or not _expected_names(call) & errors:
                    continue
                if any(keyword.arg == "match" for keyword in call.keywords):
                    continue
                bound = item.optional_vars
                if isinstance(bound, ast.Name) and bound.id in loaded:
                    continue
                found.add(block.lineno)
    return sorted(found)


def test_the_scan_knows_our_errors():
    errors = project_errors()
    assert {"ConfigurationError", "RequestRejectedError", "PayloadTooLargeError", "ServiceFailedError",
            "DeploymentStackMissingError", "CortexStreamError", "JsonOutputError"} <= errors
    assert not {"ValueError", "Exception", "SystemExit"} & errors


def test_the_scan_flags_a_bare_block_and_an_unused_binding():
    source = (
        "def test_bare():\n"
        "    with pytest.raises(ConfigurationError):\n"
        "        f()\n"
        "def test_unused():\n"
        "    with pytest.raises(errors.RequestRejectedError) as refused:\n"
        "        f()\n"
        "def test_checked():\n"
        "    with pytest.raises((ConfigurationError, ValueError)) as refused:\n"
        "        f()\n"
        "    assert_fix(refused, 'Endpoint')\n"
        "def test_matched_and_not_ours():\n"
        "    with pytest.raises(ConfigurationError, match='Endpoint'):\n"
        "        f()\n"
        "    with pytest.raises(ValueError):\n"
        "        f()\n"
    )
    assert unchecked_raises(source, project_errors()) == [2, 5]


def test_every_raises_of_a_project_error_checks_the_error():
    errors = project_errors()
    unchecked = [f"{path.relative_to(ROOT)}:{line}" for path in sorted(TESTS.rglob("*.py"))
                 for line in unchecked_raises(path.read_text(encoding="utf-8"), errors)]
    assert not unchecked, (
        "These pytest.raises blocks expect one of our errors but never look at it; bind it (`as caught`) and "
        "check its fix with error_checks.assert_fix(caught, <the remedy's words>), or pass match=:\n  "
        + "\n  ".join(unchecked)
    )
