"""Test-wide setup: import the plugin library from the checkout, fully offline."""

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python-lib"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from spcs_llm import redaction  # noqa: E402


@pytest.fixture
def mocked():
    """HTTP mocked with ``responses`` on a clean endpoint registry (transport tests)."""
    import responses

    from spcs_llm.transport import reset_endpoint_registry

    reset_endpoint_registry()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
    reset_endpoint_registry()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Token caches, endpoint registries and learned endpoint facts are process-wide: reset them per test."""
    yield
    from spcs_llm import auth, chat, embeddings, transport

    auth.clear_token_cache()
    transport.reset_endpoint_registry()
    chat.forget_detected_protocols()
    embeddings.forget_dimensions()


class _SecretLeakDetector(logging.Handler):
    """Sees every log record of the run at DEBUG and keeps those that contain a secret the library registered."""

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
        except Exception:  # a malformed record is not ours to judge
            return
        known = redaction._known_secrets()
        if known is not None and known.search(message):
            self.leaks.append(f"{record.name}: {redaction.redact(message)[:200]}")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log_record():
    """No token, key or password appears in any log line of the whole test run (issue 2, "Done when")."""
    detector = _SecretLeakDetector()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(detector)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(detector)
    root.setLevel(previous)
    assert not detector.leaks, f"secrets reached log records: {detector.leaks[:5]}"
