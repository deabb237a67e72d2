"""Fixtures shared by the auth tests: an empty token cache, no back-off waits, a frozen clock, mocked HTTP."""

import pytest
import responses
from freezegun import freeze_time

from spcs_llm.core.auth import account, clear_token_cache


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    clear_token_cache()
    monkeypatch.setattr(account, "RETRY_SLEEP", lambda _seconds: None)
    yield
    clear_token_cache()


@pytest.fixture
def clock():
    # freezegun patches every loaded module's time attributes; reading them from transformers' lazy modules (loaded
    # when the SPCS tests run in the same session) imports all of transformers, pandas included: minutes.
    with freeze_time("2026-01-01 00:00:00", ignore=["transformers", "torch", "pandas", "tokenizers"]) as frozen:
        yield frozen


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock
