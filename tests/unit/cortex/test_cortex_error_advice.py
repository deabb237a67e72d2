"""Every typed error the Cortex connector raises carries advice that fits Cortex: several of the core's default
fixes are written for SPCS services (service roles, ingress hosts, 'Service protocol', SHOW FUNCTIONS IN MODEL), so
such an error built without its own fix would send a Cortex user to the wrong place. Scans the constructors of the
core's error types in python-lib/spcs_llm/cortex."""

from __future__ import annotations

import ast
from pathlib import Path

from spcs_llm.core import errors

CORTEX = Path(__file__).resolve().parents[3] / "python-lib" / "spcs_llm" / "cortex"
SPCS_WORDS = ("SERVICE", "ingress", "Service protocol", "IN MODEL", "min_instances")
SPCS_WORDED = {name for name, value in vars(errors).items() if isinstance(value, type)
               and issubclass(value, errors.SpcsLlmError) and any(word in value.default_fix for word in SPCS_WORDS)}


def constructions_without_fix(source: str, name: str) -> list[str]:
    """``file:line Type`` for each SPCS-worded core error built without ``fix=``."""
    return [f"{name}:{node.lineno} {node.func.id}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SPCS_WORDED
            and not any(keyword.arg == "fix" for keyword in node.keywords)]


def test_every_spcs_worded_core_error_the_cortex_connector_builds_names_its_own_fix():
    found = [site for path in sorted(CORTEX.glob("*.py"))
             for site in constructions_without_fix(path.read_text(encoding="utf-8"), path.name)]
    assert found == []


def test_the_scan_knows_which_defaults_are_spcs_worded_and_finds_a_construction_without_fix():
    assert {"BadResponseError", "RequestRejectedError", "PermissionDeniedError", "TransportError"} <= SPCS_WORDED
    assert "CredentialMissingError" not in SPCS_WORDED and "ConfigurationError" not in SPCS_WORDED
    source = "raise BadResponseError('x')\nraise BadResponseError('y', fix='z')\nraise ConfigurationError('w')\n"
    assert constructions_without_fix(source, "probe.py") == ["probe.py:1 BadResponseError"]
