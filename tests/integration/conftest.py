"""Integration fixtures: one local SPCS stand-in per test session, with both real models loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spcs_llm.local.stack import LocalStack


@pytest.fixture(scope="session")
def standin_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in's stderr, so tests can assert that no secret ever reaches its log."""
    return tmp_path_factory.mktemp("standin") / "stderr.log"


@pytest.fixture(scope="session")
def local_stack(standin_log: Path) -> Iterator[LocalStack]:
    with LocalStack.start(
        preload=("chat", "embed"), workers=1, queue_size=2, stderr_path=standin_log, extra_args=("--verbose",)
    ) as stack:
        yield stack


def _snowflake_auth(token: str, *, oauth: bool = False) -> dict[str, str]:
    headers = {"Authorization": f'Snowflake Token="{token}"'}
    if oauth:
        headers["X-SF-SPCS-Authentication-Method"] = "OAUTH"
    return headers


@pytest.fixture(scope="session")
def snowflake_auth() -> Callable[..., dict[str, str]]:
    """Build the ingress auth headers (spcs-protocol.md §0.2): ``snowflake_auth(token, oauth=False)``."""
    return _snowflake_auth


@pytest.fixture()
def pat_headers(local_stack: LocalStack) -> dict[str, str]:
    return _snowflake_auth(local_stack.issue_pat())


@pytest.fixture()
def clean_stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The shared stand-in, with faults, cold starts and grants put back after the test."""
    yield local_stack
    local_stack.reset_faults()
    for service in local_stack.services:
        local_stack.grant_role(service, "SPCS_CALLER")
