"""A suspended service resumes in phases (503 resuming, 502 model loading, refused connections), then answers."""

from __future__ import annotations

import time

import pytest
import requests

from spcs_llm.core.errors import ConfigurationError
from spcs_standin.settings import ResumePhase, parse_resume_phases

BODY = {"data": [[0, "a short sentence", None, None]]}


def _encode(stack, headers) -> requests.Response:
    return requests.post(f"{stack.embed_url}/encode", json=BODY, headers=headers, timeout=30)


def _statuses_until_ok(stack, headers, limit_s: float, seen: list[int]) -> list[int]:
    """Call until a 200; the distinct statuses in the order they came."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        status = _encode(stack, headers).status_code
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == 200:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"No 200 within {limit_s} s: {seen}")


def test_502_then_503_then_ok(clean_stack, pat_headers):
    clean_stack.suspend("embed", [(502, 1.0), (503, 1.0)])
    started = time.monotonic()
    first = _encode(clean_stack, pat_headers)
    # Inferred: the proxy's 502 body is unknown; the stand-in sends an HTML page, not JSON.
    assert first.status_code == 502 and first.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in first.text
    assert _statuses_until_ok(clean_stack, pat_headers, 10, [502]) == [502, 503, 200]
    assert 2.0 <= time.monotonic() - started < 6.0
    assert _encode(clean_stack, pat_headers).status_code == 200  # resumed for good


def test_refused_connections_then_ok(clean_stack, pat_headers):
    clean_stack.stats("embed", reset=True)
    clean_stack.suspend("embed", [("refuse", 1.0)])
    with pytest.raises(requests.ConnectionError):
        _encode(clean_stack, pat_headers)
    with requests.Session() as session:  # a new connection is reset too, before any answer
        with pytest.raises(requests.ConnectionError):
            session.post(f"{clean_stack.embed_url}/encode", json=BODY, headers=pat_headers, timeout=30)
    assert clean_stack.stats("embed")["refused"] >= 2
    time.sleep(1.1)
    assert _encode(clean_stack, pat_headers).status_code == 200


def test_the_resume_clock_starts_at_the_first_contact(clean_stack, pat_headers):
    clean_stack.suspend("embed", [(503, 0.5)])
    time.sleep(0.7)  # suspended services stay suspended until someone calls them
    assert _encode(clean_stack, pat_headers).status_code == 503


def test_reset_faults_ends_a_suspension(clean_stack, pat_headers):
    clean_stack.suspend("embed", [(503, 60.0)])
    clean_stack.reset_faults()
    assert _encode(clean_stack, pat_headers).status_code == 200


@pytest.mark.parametrize("phases", [[], [(500, 1.0)], [(502, -1.0)]])
def test_bad_phases_are_refused(clean_stack, phases):
    with pytest.raises(ConfigurationError) as refused:
        clean_stack.suspend("embed", phases)
    # The stand-in's own remedy is the client's fix.
    remedy = "Pass phases such as" if not phases else "Use 503, 502" if phases[0][0] == 500 else "Use 0 or more seconds"
    assert refused.value.fix.startswith(remedy) and "Fix:" not in refused.value.message


def test_resume_phases_flag():
    assert parse_resume_phases("503:30, 502:20,refuse:5") == (
        ResumePhase(503, 30.0), ResumePhase(502, 20.0), ResumePhase("refuse", 5.0))
    assert parse_resume_phases("") == ()
    for bad in ("404:3", "502", "502:soon"):
        with pytest.raises(ConfigurationError, match="Fix:"):
            parse_resume_phases(bad)


def test_a_stand_in_started_with_resume_phases_starts_suspended(snowflake_auth):
    """A second, model-free stand-in: every service starts suspended; the 502 comes before any model work."""
    from spcs_standin.stack import LocalStack

    with LocalStack.start(extra_args=("--resume-phases", "502:30"), startup_timeout=60) as stack:
        headers = snowflake_auth(stack.issue_pat())
        for service in ("embed", "chat_llama2"):
            response = requests.post(f"{stack.service_url(service)}/__call__", json={}, headers=headers, timeout=10)
            assert response.status_code == 502
