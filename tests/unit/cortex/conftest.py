"""Fixtures for the Cortex connector's unit tests: fresh endpoint state and token cache, mocked HTTP."""

import pytest
import responses

from spcs_llm.core.auth import clear_token_cache
from spcs_llm.core.endpoint_state import reset_endpoint_registry


@pytest.fixture(autouse=True)
def fresh_state():
    reset_endpoint_registry()
    clear_token_cache()
    yield
    reset_endpoint_registry()
    clear_token_cache()


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
