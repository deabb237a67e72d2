"""Test-wide setup: import the plugin library from the checkout, fully offline."""

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python-lib"))
sys.path.insert(0, str(ROOT / "standin"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from spcs_llm.core import redaction  # noqa: E402 - from the checkout, after the path and offline settings above


@pytest.fixture
def mocked():
    """HTTP mocked with ``responses`` on a clean endpoint registry (transport tests)."""
    import responses

    from spcs_llm.core.endpoint_state import reset_endpoint_registry

    reset_endpoint_registry()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
    reset_endpoint_registry()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Token caches, endpoint registries and learned endpoint facts are process-wide: reset them per test."""
    yield
    from spcs_llm.core.registry import reset_process_state

    reset_process_state()


def _loggers() -> list[logging.Logger]:
    return [logging.getLogger(), *(logger for logger in list(logging.Logger.manager.loggerDict.values())
                                   if isinstance(logger, logging.Logger))]


def _is_pytest_handler(handler: logging.Handler) -> bool:
    """pytest's own capture handlers (caplog, the report sections), which pytest adds and removes around each phase."""
    return type(handler).__module__.startswith("_pytest")


def _writes_to_closed_stream(handler: logging.Handler) -> bool:
    return bool(getattr(getattr(handler, "stream", None), "closed", False))


@pytest.fixture(autouse=True)
def _no_log_handler_outlives_its_test():
    """A console or file handler that code attaches to a logger during a test is detached (and closed) after it.

    Handlers are process-wide, but the console a test sees is not: ``sys.stdout`` during a test is pytest's capture
    of that test. snowflake-ml's ``service_logger.get_logger`` (snowflake/ml/_internal/utils/service_logger.py) adds
    a new ``StreamHandler(sys.stdout)`` with ANSI colours to the service's logger (e.g. ``SPCS_LLM.MODELS.<SVC>``)
    on every ``create_service`` while the root logger is at INFO or below, which it is during each test phase here
    (for the leak detector below). Left in place, a later test's service logs hit a closed capture ("--- Logging
    error --- ValueError: I/O operation on closed file") or a stream pytest no longer captures (coloured lines amid
    pytest's progress).
    Handlers found writing to an already-closed stream are dropped too.
    """
    before = {id(handler) for logger in _loggers() for handler in logger.handlers}
    yield
    for logger in _loggers():
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.StreamHandler) or _is_pytest_handler(handler):
                continue  # NullHandlers and the like that libraries add at import write nowhere: left alone
            if id(handler) not in before or _writes_to_closed_stream(handler):
                logger.removeHandler(handler)
                if isinstance(handler, logging.FileHandler):
                    handler.close()
        if not logger.handlers and not logger.propagate and logger is not logging.getLogger():
            # Left with no handler, a non-propagating logger would fall back to logging.lastResort, which writes to
            # whatever sys.stderr is when a straggling thread (snowflake-ml's log streamer) logs: between test
            # phases, that is the terminal. Its records reached only the handler just removed: they go nowhere now.
            logger.addHandler(logging.NullHandler())


class _SecretLeakDetector(logging.Handler):
    """Sees every log record of the run (DEBUG ones during test phases) and keeps those that contain a secret the
    library registered."""

    # requests-oauthlib/oauthlib run DSS's side of the OAuth dance in the harness (DSS's code, not the plugin's).
    OUTSIDE_THE_PLUGIN = ("requests_oauthlib", "oauthlib")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.OUTSIDE_THE_PLUGIN):
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - any library's record: its msg's __str__ or %-args may raise anything
            # (logging.Handler.handleError catches Exception too); a malformed record is not ours to judge
            return
        known = redaction._known_secrets()
        if known is not None and known.search(message):
            self.leaks.append(f"{record.name}: {redaction.redact(message)[:200]}")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log_record():
    """No token, key or password appears in any log line of the whole test run (issue 2, "Done when").

    The detector hears every record; records below WARNING are made while a test phase runs (the hooks below).
    """
    detector = _SecretLeakDetector()
    root = logging.getLogger()
    root.addHandler(detector)
    yield
    root.removeHandler(detector)
    assert not detector.leaks, f"secrets reached log records: {detector.leaks[:5]}"


@contextlib.contextmanager
def _records_at_debug() -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.setLevel(previous)


# The root logger is at DEBUG (so the leak detector sees DEBUG records) only while a test phase runs, inside
# pytest's capture (trylast: the innermost wrapper), not for the whole session: snowflake-ml's service_logger
# attaches a console handler to ``sys.stdout`` whenever the root logger is at INFO or below, and its log-streaming
# thread can outlive a phase; between phases ``sys.stdout`` is the terminal, where pytest prints its progress.
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item):
    with _records_at_debug():
        return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    with _records_at_debug():
        return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    with _records_at_debug():
        return (yield)
