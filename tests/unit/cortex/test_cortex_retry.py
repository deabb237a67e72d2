"""Cortex rate limits and refusals through the shared retry policy: 429 honours Retry-After, 403 is final at once."""

import pytest
import responses
from cortex_support import CHAT_URL, chat_client

from spcs_llm.core.errors import (
    PermissionDeniedError,
    RateLimitedError,
    ServiceResumeTimeoutError,
    ServiceUnavailableError,
)
from spcs_llm.cortex.dss_adapter import CortexChatAdapter

OK = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
QUERY = {"messages": [{"role": "user", "content": "hi"}]}
LIMITED = {"message": "Too many requests. Please retry after some time.", "code": "429"}


def test_a_429_is_retried_after_the_servers_retry_after(http, fake_time):
    http.add(responses.POST, CHAT_URL, status=429, json=LIMITED, headers={"Retry-After": "7"})
    http.add(responses.POST, CHAT_URL, status=429, json=LIMITED, headers={"Retry-After": "3"})
    http.add(responses.POST, CHAT_URL, json=OK)
    response = CortexChatAdapter(chat_client(fake_time)).process(QUERY, {}, None)
    assert response["text"] == "ok" and len(http.calls) == 3
    assert fake_time.sleeps == [7.0, 3.0]


def test_a_429_without_retry_after_backs_off_within_the_jitter_ceiling(http, fake_time):
    http.add(responses.POST, CHAT_URL, status=429, json=LIMITED)
    http.add(responses.POST, CHAT_URL, json=OK)
    CortexChatAdapter(chat_client(fake_time)).process(QUERY, {}, None)
    assert len(fake_time.sleeps) == 1 and 0.0 <= fake_time.sleeps[0] <= 1.0


def test_persistent_rate_limiting_fails_with_the_cortex_rate_limit_fix(http, fake_time):
    for _ in range(3):
        http.add(responses.POST, CHAT_URL, status=429, json=LIMITED, headers={"Retry-After": "1"})
    with pytest.raises(RateLimitedError) as limited:
        CortexChatAdapter(chat_client(fake_time, max_attempts=3)).process(QUERY, {}, None)
    assert len(http.calls) == 3 and "tokens and requests per minute" in limited.value.fix


def test_a_403_is_final_at_once_and_names_the_cortex_user_grant(http, fake_time):
    http.add(responses.POST, CHAT_URL, status=403, json={"message": "Role not authorized for Cortex."})
    with pytest.raises(PermissionDeniedError) as denied:
        CortexChatAdapter(chat_client(fake_time)).process(QUERY, {}, None)
    assert len(http.calls) == 1 and fake_time.sleeps == []
    assert "SNOWFLAKE.CORTEX_USER" in denied.value.fix


def test_a_503_is_retried_as_overload_not_waited_for_as_a_cold_start(http, fake_time):
    for _ in range(2):
        http.add(responses.POST, CHAT_URL, status=503, json={"message": "busy"})
    with pytest.raises(ServiceUnavailableError) as failed:
        CortexChatAdapter(chat_client(fake_time, max_attempts=2)).process(QUERY, {}, None)
    assert not isinstance(failed.value, ServiceResumeTimeoutError)
    assert len(http.calls) == 2 and len(fake_time.sleeps) == 1  # the attempt limit applies, not a resume budget
    assert "Cortex is busy" in failed.value.fix
