"""Fixtures for the Cortex connector's unit tests: mocked HTTP (process state is reset after every test by the
root conftest's ``_fresh_process_state``)."""

import pytest
import responses


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
