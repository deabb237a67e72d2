"""Catalog, Cortex components: the same kinds of bad inputs and bad environments as the SPCS catalog, sent through
the real ``python-llms/cortex-chat`` and ``cortex-embedding`` components to the stand-in's Cortex endpoints.

Each case gets its own specific error naming the fix; in an embedding batch, a bad row costs only that row and
every other row keeps exactly its own vector (the stand-in's Cortex embed model is the packaged MiniLM).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from catalog_runner import Case, Env, chat_query, run_case, texts_query, unused_port
from reliability_configs import pat_preset

from spcs_llm.core.errors import (
    EndpointNotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    TransportError,
)
from spcs_standin.cortex_engines import CHAT_MODEL, EMBED_MODEL
from spcs_standin.harness import load_component

CHAT = "cortex-chat"
EMBED = "cortex-embedding"
GOOD = ["The harbour opens at dawn.", "Granite does not float.", "Tea is served at four."]
HELLO = chat_query("Say hello.")
FAST_FAIL = {"max_attempts": 2, "max_retry_seconds": 5}


def cortex(env: Env, model: str, account_url: str | None = None, **params: object) -> dict:
    """A Cortex component's config as DSS resolves it: a PAT preset for the suite's stand-in, and the model."""
    preset = pat_preset(env.stack.issue_pat(), account_url or env.stack.cortex_url)
    return {**preset, "model": model, **params}


def batch_with(bad: object, position: int = 1) -> dict:
    return texts_query([*GOOD[:position], bad, *GOOD[position:]])


def revoke_cortex_user(env: Env) -> None:
    env.stack.set_cortex_user("LOCAL_USER", False)


def rate_limit(model: str, component: str, query: dict):
    """One request per 10 minutes for ``model``, used up by a first call, so the case's call gets the 429."""
    def prepare(env: Env) -> None:
        env.stack.set_cortex_rate_limit(model, 1, window_s=600)
        load_component(component, cortex(env, model)).process(query, {}, None)
    return prepare


def all_rows(fragment: str) -> dict[int, str]:
    """An account-level refusal: each row of the batch carries it, with its fix."""
    return {index: fragment for index in range(len(GOOD))}


EMBED_CASES = [
    Case("cortex-image-query", EMBED, lambda env: cortex(env, EMBED_MODEL),
         batch_with({"inlineImage": "aGVsbG8gd29ybGQ="}, 2), failed_rows={2: "image inputs cannot be embedded"}),
    Case("cortex-query-without-texts", EMBED, lambda env: cortex(env, EMBED_MODEL), {"inputs": ["hello"]},
         raises=RequestRejectedError, says="neither 'queries' nor 'text'", fix="{'queries'"),
    Case("cortex-chat-model-as-embedder", EMBED, lambda env: cortex(env, CHAT_MODEL), texts_query(GOOD),
         failed_rows=all_rows(f'unknown model "{CHAT_MODEL}"\'. Fix: Check the model name')),
    Case("cortex-embed-without-cortex-user", EMBED, lambda env: cortex(env, EMBED_MODEL), texts_query(GOOD),
         prepare=revoke_cortex_user, failed_rows=all_rows("GRANT DATABASE ROLE SNOWFLAKE.CORTEX_USER")),
    Case("cortex-embed-rate-limited", EMBED, lambda env: cortex(env, EMBED_MODEL, **FAST_FAIL), texts_query(GOOD),
         prepare=rate_limit(EMBED_MODEL, EMBED, texts_query(GOOD)), failed_rows=all_rows("lower 'Max parallelism'")),
    Case("cortex-embed-unreachable-account", EMBED,
         lambda env: cortex(env, EMBED_MODEL, f"http://127.0.0.1:{unused_port()}", **FAST_FAIL), texts_query(GOOD),
         failed_rows=all_rows("Could not reach")),
    Case("cortex-empty-text", EMBED, lambda env: cortex(env, EMBED_MODEL), batch_with(""),
         failed_rows={1: "empty or only whitespace"}),
    Case("cortex-whitespace-text", EMBED, lambda env: cortex(env, EMBED_MODEL), batch_with(" \n\t  "),
         failed_rows={1: "empty or only whitespace"}),
    Case("cortex-not-a-text", EMBED, lambda env: cortex(env, EMBED_MODEL), batch_with(None),
         failed_rows={1: "expected a text, got NoneType"}),
    Case("cortex-single-empty-text", EMBED, lambda env: cortex(env, EMBED_MODEL), {"text": "   "},
         raises=RequestRejectedError, says="empty or only whitespace", fix="filter out empty rows"),
    Case("cortex-lone-surrogate", EMBED, lambda env: cortex(env, EMBED_MODEL), batch_with("caf\udce9 au lait", 3),
         failed_rows={3: "lone surrogate"}),
    Case("cortex-one-megabyte-text", EMBED, lambda env: cortex(env, EMBED_MODEL),
         batch_with("lorem ipsum " * 90_000, 0), failed_rows={0: "split long documents into chunks"}),
]

CHAT_CASES = [
    Case("cortex-chat-no-messages", CHAT, lambda env: cortex(env, CHAT_MODEL), {"messages": []},
         raises=RequestRejectedError, says="The query has no messages", fix="message"),
    Case("cortex-chat-image-part", CHAT, lambda env: cortex(env, CHAT_MODEL),
         {"messages": [{"role": "user", "parts": [{"type": "IMAGE_INLINE", "inlineImage": "aGk="}]}]},
         raises=RequestRejectedError, says="image", fix="image"),
    Case("cortex-chat-required-tool-on-llama", CHAT, lambda env: cortex(env, CHAT_MODEL), HELLO,
         settings={"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
                   "toolChoice": {"type": "required"}},
         raises=RequestRejectedError, says="cannot call tools", fix="Tool calling"),
    Case("cortex-chat-unknown-model", CHAT, lambda env: cortex(env, "no-such-model"), HELLO,
         raises=RequestRejectedError, says='unknown model "no-such-model"', fix="model"),
    Case("cortex-chat-embed-model-as-chat", CHAT, lambda env: cortex(env, EMBED_MODEL), HELLO,
         raises=RequestRejectedError, says=EMBED_MODEL, fix="model"),
    Case("cortex-chat-without-cortex-user", CHAT, lambda env: cortex(env, CHAT_MODEL), HELLO,
         prepare=revoke_cortex_user, raises=PermissionDeniedError, says="403", fix="CORTEX_USER"),
    Case("cortex-chat-rate-limited", CHAT, lambda env: cortex(env, CHAT_MODEL, **FAST_FAIL), HELLO,
         prepare=rate_limit(CHAT_MODEL, CHAT, HELLO), raises=RateLimitedError, says="429", fix="parallelism"),
    Case("cortex-chat-unreachable-account", CHAT,
         lambda env: cortex(env, CHAT_MODEL, f"http://127.0.0.1:{unused_port()}", **FAST_FAIL), HELLO,
         raises=TransportError, says="Could not reach", fix="network"),
    Case("cortex-chat-wrong-account-path", CHAT,
         lambda env: cortex(env, CHAT_MODEL, f"{env.stack.cortex_url}/not-an-account"), HELLO,
         raises=EndpointNotFoundError, says="404", fix="account"),
    Case("cortex-chat-whitespace-message", CHAT, lambda env: cortex(env, CHAT_MODEL), chat_query("  \n "),
         raises=RequestRejectedError, says="no user message with text", fix="non-empty user message"),
    Case("cortex-chat-lone-surrogate", CHAT, lambda env: cortex(env, CHAT_MODEL), chat_query("caf\udce9 menu"),
         raises=RequestRejectedError, says="lone surrogate", fix="errors='replace'"),
]


@pytest.fixture(autouse=True)
def _cortex_put_back(clean) -> Iterator[None]:
    """Rate limits and CORTEX_USER revocations set by a case are lifted after it."""
    clean.reset_cortex()
    yield
    clean.reset_cortex()


@pytest.mark.parametrize("case", [case.param() for case in EMBED_CASES + CHAT_CASES])
def test_cortex_catalog(case: Case, env: Env, exposure):
    run_case(case, env, exposure)


def test_stand_in_answers_a_lone_surrogate_with_a_400_naming_the_row(env: Env):
    """Sent past the component (which refuses it first), the body is the caller's error, never a 500."""
    body = f'{{"model": "{EMBED_MODEL}", "text": ["fine", "caf\\udce9"]}}'
    headers = {"Authorization": f"Bearer {env.stack.issue_pat()}", "Content-Type": "application/json",
               "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN"}
    answer = requests.post(f"{env.stack.cortex_url}/api/v2/cortex/inference:embed", data=body, timeout=30,
                           headers=headers)
    assert answer.status_code == 400 and "'text[1]'" in answer.json()["message"]
    assert "lone surrogate" in answer.json()["message"]
