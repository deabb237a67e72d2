"""The demo and the stand-in silence the libraries' warnings and progress bars, unless run with -v."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytest

from spcs_standin.quiet import NOISY_LOGGERS, QUIET_ENVIRONMENT, quiet_libraries


@pytest.fixture()
def restored(monkeypatch):
    """Undo what quiet_libraries changes in this process."""
    for name in QUIET_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    with warnings.catch_warnings():
        yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_quiet_by_default_for_this_process_and_its_children(restored, monkeypatch):
    monkeypatch.delitem(sys.modules, "transformers", raising=False)  # as if not imported yet
    quiet_libraries(verbose=False)

    assert {name: os.environ[name] for name in QUIET_ENVIRONMENT} == QUIET_ENVIRONMENT
    assert all(logging.getLogger(name).level == logging.ERROR for name in NOISY_LOGGERS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("deprecated", DeprecationWarning, stacklevel=1)
    assert caught == []


def test_verbose_leaves_everything_on(restored):
    quiet_libraries(verbose=True)
    assert not any(name in os.environ for name in QUIET_ENVIRONMENT)
    assert logging.getLogger("snowflake").level != logging.ERROR
