"""The DSS contract pieces both backends share: settings → params, footers, the message walk, the embedding flow."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.dss.conversation import ImageRefusal
from spcs_llm.dss.embedding import IMAGE_QUERY, EmbeddingComponent, EmbeddingRow, texts_from_query
from spcs_llm.dss.generation import GenerationParams, Usage, params_from_settings, token_counts
from spcs_llm.dss.messages import messages_from_dss
from spcs_llm.dss.responses import chat_footer, usage_footer

REQUIRED_TOOL = {"tools": [{"type": "function", "function": {"name": "get_weather"}}],
                 "toolChoice": {"type": "required"}, "temperature": 0.5}
IMAGES = ImageRefusal("No images here.", "Remove the image.")
AGENT_QUERY = {
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "toolCalls": [{"id": "c1", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "toolOutputs": [{"callId": "c1", "output": "sunny"}]},
        {"role": "memoryFragment", "content": "skipped"},
    ]
}


def test_the_shared_settings_reader_leaves_tools_to_the_backend():
    assert params_from_settings(REQUIRED_TOOL) == GenerationParams(temperature=0.5)


def test_a_cost_the_backend_does_not_know_is_left_out_of_the_footer():
    assert usage_footer(3, 2, estimated=True, cost=None) == {
        "promptTokens": 3, "completionTokens": 2, "totalTokens": 5, "tokenCountsAreEstimated": True}
    assert usage_footer(3, 0, estimated=False, cost=0.25)["estimatedCost"] == 0.25
    assert "finishReason" not in chat_footer(1, 1, estimated=False, cost=0.0, finish_reason=None)
    assert chat_footer(1, 1, estimated=False, cost=0.0, finish_reason="length")["finishReason"] == "length"


def test_service_usage_wins_over_counting():
    counter = SimpleNamespace(count=lambda text: len(text.split()), exact=False)
    assert token_counts(Usage(7, 4), counter, "a b", "c") == (7, 4, False)
    assert token_counts(None, counter, "a b", "c") == (2, 1, True)


def test_one_walk_writes_tool_traffic_as_text_or_structured():
    assert messages_from_dss(AGENT_QUERY, IMAGES) == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "[Tool call] get_weather({})"},
        {"role": "user", "content": "[Output of tool get_weather]\nsunny"},
    ]
    renamed = messages_from_dss(AGENT_QUERY, IMAGES, structured_tools=True,
                                calls_of=lambda calls: [{**c, "type": "function"} for c in calls])
    assert renamed[1] == {"role": "assistant", "content": None,
                          "tool_calls": [{"id": "c1", "type": "function",
                                          "function": {"name": "get_weather", "arguments": "{}"}}]}
    assert renamed[2] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}


def test_an_image_is_refused_with_the_backends_words():
    query = {"messages": [{"role": "user", "parts": [{"type": "IMAGE_INLINE", "inlineImage": "..."}]}]}
    with pytest.raises(RequestRejectedError, match="No images here"):
        messages_from_dss(query, IMAGES)


@dataclass
class _Result:
    rows: list
    prompt_tokens: int = 4
    tokens_estimated: bool = True


class _Component(EmbeddingComponent[_Result]):
    span_name = "test embeddings"

    def embed(self, texts):
        return _Result([EmbeddingRow(vector=[1.0]) if isinstance(t, str) else EmbeddingRow(error="bad") for t in texts])

    def cost(self, result):
        return None

    def attributes(self, result):
        return {"rows": len(result.rows)}


def test_the_embedding_flow_answers_per_row_errors_and_usage():
    texts, single = texts_from_query({"queries": [{"text": "a"}, {"inlineImage": "x"}]})
    assert (texts, single) == (["a", IMAGE_QUERY], False)
    answer = _Component().process({"queries": [{"text": "a"}, {"inlineImage": "x"}]}, None, None)
    assert answer == {"responses": [{"embedding": [1.0]}, {"errorMessage": "bad"}], "promptTokens": 4,
                      "completionTokens": 0, "totalTokens": 4, "tokenCountsAreEstimated": True}
    assert _Component().process({"text": "a"}, None, None)["embedding"] == [1.0]
    with pytest.raises(RequestRejectedError, match="bad"):
        _Component().process({"text": 3}, None, None)
