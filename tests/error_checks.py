"""Checks for the project's typed errors: every error names its fix, and a test says which fix."""

from __future__ import annotations

import pytest

from spcs_llm.core.errors import SpcsLlmError


def assert_fix(excinfo: pytest.ExceptionInfo[SpcsLlmError], *words: str) -> str:
    """The raised error is ours, names a fix saying each of ``words``, and shows it after "Fix:"; returns the fix."""
    error = excinfo.value
    assert isinstance(error, SpcsLlmError), f"{type(error).__name__} is not an SpcsLlmError: {error}"
    assert error.fix, f"{type(error).__name__} names no fix: {error}"
    missing = [word for word in words if word not in error.fix]
    assert not missing, f"the fix does not say {missing}: {error.fix!r}"
    assert str(error).endswith(f"Fix: {error.fix}")
    return error.fix
