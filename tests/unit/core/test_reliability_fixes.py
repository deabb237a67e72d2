"""Regressions found by the reliability suite (tests/reliability), pinned here without a stand-in."""


import pytest
import responses

from spcs_llm.core.auth import Credential
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.endpoint_state import reset_endpoint_registry
from spcs_llm.core.errors import AuthenticationError, RequestRejectedError
from spcs_llm.core.transport import Transport
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.dss_adapter import messages_from_query
from spcs_llm.spcs.embeddings import EmbeddingClient

BASE = "https://fix-org-acct.snowflakecomputing.app"
URL = f"{BASE}/encode"
EXPIRED = {"code": "390104", "message": "User must login again to access the service."}


class RenewingTokens:
    """A session-token source: every renewal hands out a new token."""

    identity = "reliability-fix-identity"

    def __init__(self) -> None:
        self.renewals = 0
        self.current = Credential("session-token-000", expires_at=float('inf'))

    def credential(self) -> Credential:
        return self.current

    def renew(self, rejected: Credential) -> Credential:
        self.renewals += 1
        self.current = Credential(f"session-token-{self.renewals:03d}", expires_at=float('inf'))
        return self.current


@pytest.fixture
def mocked():
    reset_endpoint_registry()
    with responses.RequestsMock() as rsps:
        yield rsps
    reset_endpoint_registry()


def _transport(tokens: RenewingTokens) -> Transport:
    return Transport(EndpointConfig(base_url=BASE, route="encode"), tokens, sleep=lambda seconds: None)


def test_a_token_renewed_in_an_earlier_attempt_may_be_renewed_again_after_a_retry(mocked):
    # The soak's session tokens expire every 2 s and a 429 asks for a 2 s wait: the token renewed in attempt 1
    # has expired again by attempt 2. That used to end the call with AuthenticationError.
    for status, body in [(401, EXPIRED), (429, {"error": "Too many requests"}), (401, EXPIRED), (200, {"data": []})]:
        mocked.add(responses.POST, URL, status=status, json=body)
    tokens = RenewingTokens()
    result = _transport(tokens).post_json("encode", {"data": []})
    assert (result.status, result.renewals, result.attempts, tokens.renewals) == (200, 2, 4, 2)
    assert [c.request.headers["Authorization"] for c in mocked.calls] == [
        'Snowflake Token="session-token-000"', 'Snowflake Token="session-token-001"',
        'Snowflake Token="session-token-001"', 'Snowflake Token="session-token-002"',
    ]


def test_a_credential_rejected_right_after_its_renewal_still_fails_at_once(mocked):
    mocked.add(responses.POST, URL, status=200, json={"data": []})  # answered before: no grant still propagating
    mocked.add(responses.POST, URL, status=401, json=EXPIRED)
    mocked.add(responses.POST, URL, status=401, json=EXPIRED)
    tokens = RenewingTokens()
    transport = _transport(tokens)
    transport.post_json("encode", {"data": []})
    with pytest.raises(AuthenticationError, match="even after renewing it once"):
        transport.post_json("encode", {"data": []})
    assert tokens.renewals == 1 and len(mocked.calls) == 3


def test_a_chat_message_with_a_lone_surrogate_is_refused_before_sending():
    # Sent as is, it reached the model server, whose tokenizer failed with a TypeError that the user could not act on.
    query = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "caf\udce9 menu"}]}
    with pytest.raises(RequestRejectedError) as refused:
        messages_from_query(query)
    assert "Message 1 holds invalid Unicode at character 3 (a lone surrogate)" in refused.value.message
    assert "errors='replace'" in refused.value.fix


def test_chat_messages_with_valid_unicode_pass_unchanged():
    query = {"messages": [{"role": "user", "content": "café 🍵 menu"}]}
    assert messages_from_query(query) == [{"role": "user", "content": "café 🍵 menu"}]


@responses.activate
def test_a_row_the_service_left_out_gets_an_error_that_names_a_fix():
    # Other row errors say what to do; this one used to stop at "Row 1 is missing from the service's reply."
    endpoint = "https://embed-fix-org-acct.snowflakecomputing.app"
    responses.add(responses.POST, f"{endpoint}/encode", json={"data": [[0, {"output": [0.5, 0.25]}]]})
    client = EmbeddingClient(parse_embedding_config({
        "auth_type": "service", "service_preset": {"service_auth": "pat", "pat": "pat-secret-for-fix-tests"},
        "endpoint": endpoint,
    }))
    first, second = client.embed(["kept", "left out"]).rows
    assert first.vector == [0.5, 0.25]
    assert second.error.startswith("Text #1: the service returned no embedding: Row 1 is missing")
    assert "Fix: Embed this text again" in second.error and "SYSTEM$GET_SERVICE_LOGS" in second.error
