"""One process-wide registry with one reset (issue 19, P2): everything learnt per endpoint is forgotten at once."""

from spcs_llm.core.auth import account
from spcs_llm.core.auth.cache import TOKEN_CACHE
from spcs_llm.core.auth.credential import Credential, Grant
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.cost import ledger_for
from spcs_llm.core.endpoint_state import endpoint_state
from spcs_llm.core.registry import REGISTRY, reset_process_state
from spcs_llm.spcs import chat, embeddings

URL = "https://reg-org-acct.snowflakecomputing.app"


class _Tokens:
    def credential(self):
        raise AssertionError("not used")


def test_one_reset_forgets_every_endpoint_fact_the_token_cache_and_closes_sessions():
    from spcs_llm.core.transport import Transport

    state = Transport(EndpointConfig(base_url=URL, route="__call__"), _Tokens()).state
    closed = []
    state.session.close = lambda: closed.append("endpoint")
    assert ledger_for(URL) is state.ledger
    REGISTRY.put(URL, chat.PROTOCOL, chat.TEXT_GENERATION)
    REGISTRY.put(URL, embeddings.DIMENSION, 384)
    session = account.default_session()
    session.close = lambda: closed.append("account")
    TOKEN_CACHE.current(("who", "host", "role", "pat"),
                        lambda _held: Grant(Credential("t", float("inf"), kind="pat"), 0.0))
    assert len(TOKEN_CACHE) == 1

    reset_process_state()

    assert endpoint_state(URL) is None and ledger_for(URL) is not state.ledger
    assert REGISTRY.get(URL, chat.PROTOCOL) is None and REGISTRY.get(URL, embeddings.DIMENSION) is None
    assert account.default_session() is not session
    assert len(TOKEN_CACHE) == 0
    assert sorted(closed) == ["account", "endpoint"]


def test_a_backend_forgets_only_its_own_facts():
    REGISTRY.put(URL, chat.PROTOCOL, chat.TEXT_GENERATION)
    REGISTRY.put(URL, embeddings.DIMENSION, 384)
    chat.forget_detected_protocols()
    assert REGISTRY.get(URL, chat.PROTOCOL) is None and REGISTRY.get(URL + "/", embeddings.DIMENSION) == 384
