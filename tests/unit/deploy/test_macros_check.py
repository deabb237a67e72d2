"""The check macro against the local stand-in (a real SPCS-like ingress): each of the doctor's checks as a ✓ or ✗
line with its fix, the settings that worked, and no secret anywhere in the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from macro_runner import dss_with, run_macro

from spcs_standin.stack import LocalStack

ROLE = "SPCS_LLM_USER"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start() as running:
        yield running


@pytest.fixture
def dss(session, monkeypatch):
    yield from dss_with(session, monkeypatch)


def lines(page) -> list[str]:
    """The check lines, as shown: '✓ Name: detail' or '✗ Name: detail Fix: ...'."""
    text = page.text
    marks = [i for i, ch in enumerate(text) if ch in "✓✗"]
    return [text[start:end].strip() for start, end in zip(marks, [*marks[1:], len(text)])]


def check(stack: LocalStack, **config):
    return run_macro("spcs-check-connection", endpoint=stack.chat_url, account_url=stack.account_url, role=ROLE,
                     timeout=3, **config)


def test_a_pat_in_the_form_passes_every_check_and_is_never_shown(dss, stack):
    pat = stack.issue_pat()
    run = check(stack, auth="pat", token=pat)
    shown = lines(run.page)
    assert [line.split(":")[0] for line in shown] == ["✓ DNS", "✓ TCP/TLS", "✓ Ingress", "✓ Token",
                                                      "✓ Authenticated call", "✓ Protocol", "✓ Real call"]
    text = run.page.text
    assert "All checks passed" in text and "Service protocol: OpenAI-chat rows (messages → choices)" in text
    assert f"Endpoint: {stack.chat_url}" in text and "Paste the PAT itself" in text
    assert pat not in run.html and run.progress == [1, 2] and run.target == (2, "NONE")


def test_a_service_account_preset_as_dss_resolves_it(dss, stack):
    pat = stack.issue_pat()
    preset = {"service_auth": "pat", "pat": pat, "pat_exchange": False, "account_url": stack.account_url}
    run = check(stack, auth="preset", service_preset=preset)
    assert "All checks passed" in run.page.text and pat not in run.html


def test_a_refused_pat_is_a_cross_with_its_fix(dss, stack):
    wrong = "not-a-real-pat-" + "x" * 40
    run = check(stack, auth="pat", token=wrong)
    shown = lines(run.page)
    assert shown[-1].startswith("✗ Authenticated call:") and "Fix:" in shown[-1]
    assert all(line.startswith("✓") for line in shown[:-1]) and "A check failed" in run.page.text
    assert wrong not in run.html


def test_missing_credentials_fail_before_any_call(dss, stack):
    shown = lines(check(stack, auth="pat").page)
    assert shown == ["✗ Credentials: PAT authentication needs the PAT. Fix: Paste the PAT in 'Token'."]


def test_an_unknown_host_fails_dns_with_its_fix(dss):
    run = run_macro("spcs-check-connection", endpoint="https://no-such-host.invalid", auth="pat",
                    token="t" * 40, timeout=3)
    (shown,) = lines(run.page)
    assert shown.startswith("✗ DNS: no-such-host.invalid does not resolve") and "Fix: Copy the host" in shown


def test_a_caller_without_the_service_role_gets_the_grant_to_run(dss, stack):
    stack.revoke_role("chat", ROLE)
    try:
        shown = lines(check(stack, auth="pat", token=stack.issue_pat(role=ROLE)).page)
    finally:
        stack.grant_role("chat", ROLE)
    assert shown[-1].startswith("✗ Service role:") and "GRANT SERVICE ROLE" in shown[-1]
