"""The Cortex chat component, loaded as DSS loads it, against the stand-in's Cortex endpoints and real tiny models:
token streaming, cancel, the whole tool round trip, rate limits, unknown models and refusals."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
import requests
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.errors import RateLimitedError, RequestRejectedError
from spcs_standin.cortex_engines import CHAT_MODEL, TOOL_MODEL
from spcs_standin.cortex_hermes import StreamingToolParser, parse_output
from spcs_standin.cortex_images import tiny_png
from spcs_standin.harness import load_component
from spcs_standin.stack import LocalStack
from spcs_standin.tinychat import CANNED_EXCHANGES, SYSTEM_PROMPT, chat_model_dir
from spcs_standin.tinytools import WEATHER_REPORTS, WEATHER_TOOL, tool_call_text

LONG = CANNED_EXCHANGES[4]
WEATHER_QUESTION = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
TOOLS = {"tools": [WEATHER_TOOL], "toolChoice": {"type": "auto"}}


@pytest.fixture()
def chat_config(cortex: LocalStack, presets) -> dict:
    return {**presets.pat(cortex.issue_pat()), "model": CHAT_MODEL}


def stream(model, query: dict, settings: dict | None = None) -> list[dict]:
    return list(model.process_stream(query, settings or {}, SpanBuilder("test")))


def test_a_stream_arrives_token_by_token_in_order_with_the_exact_usage_in_a_last_footer(chat_config):
    from transformers import AutoTokenizer

    model = load_component("cortex-chat", {**chat_config, "input_credits_per_million": 1.0})
    events = stream(model, {"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                         {"role": "user", "content": LONG.question}]})
    texts = [event["chunk"]["text"] for event in events[:-1]]
    assert len(texts) > 10 and "".join(texts) == LONG.answer
    footer = events[-1]["footer"]
    tokenizer = AutoTokenizer.from_pretrained(chat_model_dir())
    prompt = tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM_PROMPT},
                                            {"role": "user", "content": LONG.question}],
                                           tokenize=False, add_generation_prompt=True)
    assert footer["promptTokens"] == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert footer["completionTokens"] == len(tokenizer(LONG.answer, add_special_tokens=False)["input_ids"]) + 1
    assert footer["tokenCountsAreEstimated"] is False and footer["finishReason"] == "stop"
    assert footer["estimatedCost"] == pytest.approx(footer["totalTokens"] * 3.0 / 1_000_000)


def test_the_first_chunk_arrives_while_the_model_is_still_generating(cortex, chat_config):
    cortex.set_cortex_pace(0.1)
    model = load_component("cortex-chat", chat_config)
    started = time.monotonic()
    events = model.process_stream({"messages": [{"role": "user", "content": LONG.question}]}, {}, SpanBuilder("t"))
    first = next(events)
    first_at = time.monotonic() - started
    rest = list(events)
    assert first["chunk"]["text"] and "footer" in rest[-1]
    assert time.monotonic() - started - first_at > 1.0  # 20+ more pieces, 0.1 s apart, came after the first


def test_a_cancelled_stream_closes_cleanly_and_stops_the_generation(cortex, chat_config):
    cortex.set_cortex_pace(0.2)
    model = load_component("cortex-chat", chat_config)
    events = model.process_stream({"messages": [{"role": "user", "content": LONG.question}]}, {}, SpanBuilder("t"))
    assert next(events)["chunk"]["text"]
    events.close()
    deadline = time.monotonic() + 10
    while cortex.cortex_stats()["streams_cancelled"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cortex.cortex_stats()["streams_cancelled"] == 1
    cortex.set_cortex_pace(0)
    assert model.process({"messages": [{"role": "user", "content": LONG.question}]}, {},
                         SpanBuilder("t"))["text"] == LONG.answer


def test_the_tool_round_trip_runs_on_the_models_own_tool_call(cortex, presets):
    model = load_component("cortex-chat", {**presets.oauth(cortex.issue_oauth_token()), "model": TOOL_MODEL})
    events = stream(model, WEATHER_QUESTION, TOOLS)
    assert [list(event) for event in events] == [["chunk"], ["footer"]]
    [call] = events[0]["chunk"]["toolCalls"]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert call["id"].startswith("chatcmpl-tool-") and events[1]["footer"]["finishReason"] == "tool_calls"

    result = {"role": "tool", "toolOutputs": [{"callId": call["id"], "output": WEATHER_REPORTS["Paris"]}]}
    follow_up = {"messages": [*WEATHER_QUESTION["messages"], {"role": "assistant", "toolCalls": [call]}, result]}
    answer = model.process(follow_up, TOOLS, SpanBuilder("test"))
    assert answer["text"] == f"The weather in Paris is: {WEATHER_REPORTS['Paris']}." and "toolCalls" not in answer
    assert answer["finishReason"] == "stop"


def test_parallel_tool_calls_stream_as_separate_calls_and_match_the_unstreamed_answer(cortex, chat_config):
    model = load_component("cortex-chat", {**chat_config, "model": TOOL_MODEL})
    query = {"messages": [{"role": "user", "content": "What is the weather in Paris and Oslo?"}]}
    streamed = stream(model, query, TOOLS)[0]["chunk"]["toolCalls"]
    whole = model.process(query, TOOLS, SpanBuilder("test"))["toolCalls"]
    for calls in (streamed, whole):
        assert [json.loads(c["function"]["arguments"])["city"] for c in calls] == ["Paris", "Oslo"]
        assert len({c["id"] for c in calls}) == 2


def test_tool_call_deltas_are_split_across_chunks_like_vllms_hermes_parser(cortex):
    pat = cortex.issue_pat()
    answer = requests.post(f"{cortex.cortex_url}/api/v2/cortex/v1/chat/completions", stream=True, timeout=60, json={
        "model": TOOL_MODEL, "stream": True, "tools": [WEATHER_TOOL], "messages": WEATHER_QUESTION["messages"]},
        headers={"Authorization": f"Bearer {pat}", "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN"})
    chunks = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith(b"data: {")]
    deltas = [d for chunk in chunks for c in chunk["choices"] for d in c["delta"].get("tool_calls") or []]
    assert deltas[0]["function"] == {"name": "get_weather", "arguments": ""} and deltas[0]["id"]
    fragments = [d["function"]["arguments"] for d in deltas[1:]]
    assert len(fragments) > 2 and "".join(fragments) == '{"city": "Paris"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_the_streaming_parser_sends_only_prefixes_whatever_the_pieces():
    text = "Sure. " + tool_call_text("get_weather", {"city": "Oslo"})
    parser = StreamingToolParser()
    deltas = [d for ch in text for d in parser.feed(ch)] + parser.feed("", final=True)
    assert "".join(d.get("content", "") for d in deltas) == "Sure. "
    arguments = "".join(d["tool_calls"][0]["function"].get("arguments", "") for d in deltas if "tool_calls" in d)
    assert arguments == '{"city": "Oslo"}'
    assert parse_output(text).content == "Sure. " and parse_output("<tool_call>{bad</tool_call>").tool_calls == []


def test_a_model_without_tools_is_refused_before_any_request_when_a_tool_is_required(cortex, chat_config):
    model = load_component("cortex-chat", chat_config)
    before = cortex.cortex_stats()["requests"]
    with pytest.raises(RequestRejectedError, match="cannot call tools"):
        model.process(WEATHER_QUESTION, {"tools": [WEATHER_TOOL], "toolChoice": {"type": "required"}},
                      SpanBuilder("test"))
    assert cortex.cortex_stats()["requests"] == before
    answer = model.process(WEATHER_QUESTION, TOOLS, SpanBuilder("test"))  # optional tools are left out
    assert answer["text"] and "toolCalls" not in answer


def test_a_rate_limited_model_answers_429_with_retry_after_then_the_retry_succeeds(cortex, chat_config):
    cortex.set_cortex_rate_limit(CHAT_MODEL, 1, window_s=1.0)
    model = load_component("cortex-chat", chat_config)
    query = {"messages": [{"role": "user", "content": "Hi there"}]}
    model.process(query, {}, SpanBuilder("test"))
    trace = SpanBuilder("test")
    assert model.process(query, {}, trace)["text"]
    assert "429" in trace.to_dict()["children"][-1]["attributes"]["cortex.retryReasons"]
    assert cortex.cortex_stats()["statuses"]["429"] >= 1


def test_a_rate_limit_that_outlasts_the_retries_fails_with_the_cortex_advice(cortex, chat_config):
    cortex.set_cortex_rate_limit(CHAT_MODEL, 1, window_s=60.0)
    model = load_component("cortex-chat", {**chat_config, "max_attempts": 2, "max_retry_seconds": 1})
    query = {"messages": [{"role": "user", "content": "Hi there"}]}
    model.process(query, {}, SpanBuilder("test"))
    with pytest.raises(RateLimitedError) as refused:
        model.process(query, {}, SpanBuilder("test"))
    assert "CORTEX_REST_API_RATE_LIMIT_POLICIES" in refused.value.fix


def test_an_unknown_model_is_refused_with_cortexs_unknown_model_answer(cortex, chat_config):
    model = load_component("cortex-chat", {**chat_config, "model": "llama-huge"})
    with pytest.raises(RequestRejectedError, match='unknown model') as refused:
        model.process({"messages": [{"role": "user", "content": "Hi there"}]}, {}, SpanBuilder("test"))
    assert "region" in refused.value.fix


def test_a_stop_sequence_and_max_tokens_end_the_stream_with_the_right_finish_reason(cortex, chat_config):
    model = load_component("cortex-chat", chat_config)
    query = {"messages": [{"role": "user", "content": LONG.question}]}
    stopped = stream(model, query, {"stopSequences": [", with"]})
    assert "".join(e["chunk"]["text"] for e in stopped[:-1]) == LONG.answer.split(", with")[0]
    assert stopped[-1]["footer"]["finishReason"] == "stop"
    cut = stream(model, query, {"maxOutputTokens": 3})
    assert cut[-1]["footer"]["finishReason"] == "length" and cut[-1]["footer"]["completionTokens"] == 3


def image_query(png: bytes) -> dict:
    return {"messages": [{"role": "user", "parts": [
        {"type": "TEXT", "text": "What is in this picture?"},
        {"type": "IMAGE_INLINE", "inlineImage": base64.b64encode(png).decode(), "imageMimeType": "image/png"}]}]}


@pytest.mark.parametrize("streamed", [False, True])
def test_an_image_reaches_the_cortex_endpoint_intact_and_is_answered(cortex, presets, streamed):
    png = tiny_png(3, 2, (0, 128, 255))
    model = load_component("cortex-chat", {**presets.pat(cortex.issue_pat()), "model": TOOL_MODEL,
                                           "accepts_images": "yes"})
    before = cortex.cortex_stats()["images"]
    trace = SpanBuilder("test")
    if streamed:
        events = list(model.process_stream(image_query(png), {}, trace))
        text = "".join(event["chunk"].get("text", "") for event in events if "chunk" in event)
    else:
        text = model.process(image_query(png), {}, trace)["text"]
    assert text.startswith(f"[image: image/png, 3x2, {len(png)} bytes, sha256 {hashlib.sha256(png).hexdigest()[:12]}]")
    assert cortex.cortex_stats()["images"] == before + 1
    assert trace.to_dict()["children"][0]["attributes"]["cortex.images"] == 1


def test_an_image_for_a_text_only_model_is_refused_before_sending_and_by_the_endpoint_too(cortex, chat_config):
    before = cortex.cortex_stats()["requests"]
    with pytest.raises(RequestRejectedError, match="takes text only"):
        load_component("cortex-chat", chat_config).process(image_query(tiny_png()), {}, SpanBuilder("test"))
    assert cortex.cortex_stats()["requests"] == before
    forced = load_component("cortex-chat", {**chat_config, "accepts_images": "yes"})
    with pytest.raises(RequestRejectedError, match="does not accept images"):
        forced.process(image_query(tiny_png()), {}, SpanBuilder("test"))


def test_claude_thinking_is_sent_and_its_text_goes_to_the_trace_not_the_answer(cortex, presets):
    model = load_component("cortex-chat", {**presets.pat(cortex.issue_pat()), "model": TOOL_MODEL,
                                           "thinking_budget_tokens": 1024, "default_max_tokens": 1500})
    for streamed in (False, True):
        trace = SpanBuilder("test")
        if streamed:
            events = list(model.process_stream(WEATHER_QUESTION, {}, trace))
            text = "".join(event["chunk"].get("text", "") for event in events if "chunk" in event)
        else:
            text = model.process(WEATHER_QUESTION, {}, trace)["text"]
        outputs = trace.to_dict()["children"][0]["outputs"]
        assert outputs["reasoning"] == "Thinking within a budget of 1024 tokens."
        assert "Thinking within" not in text


PNG_URL = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()


@pytest.mark.parametrize(("url", "says"), [
    ("https://example.com/cat.png", "data:<type>;base64"),
    ("data:image/tiff;base64," + base64.b64encode(b"II*\x00").decode(), "unsupported image type"),
    ("data:image/jpeg;base64," + base64.b64encode(tiny_png()).decode(), "not image/jpeg"),
    ("data:image/png;base64,@@@@", "data:<type>;base64"),
    ("data:image/png;base64," + base64.b64encode(tiny_png() + b"\x00" * 3_750_000).decode(), "the limit is"),
    ("data:image/png;base64," + base64.b64encode(tiny_png(8001, 1)).decode(), "8001x1 pixels"),
])
def test_the_endpoint_enforces_snowflakes_image_rules(cortex, url, says):
    pat = cortex.issue_pat()
    answer = requests.post(f"{cortex.cortex_url}/api/v2/cortex/v1/chat/completions", timeout=60, json={
        "model": TOOL_MODEL, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}]}]},
        headers={"Authorization": f"Bearer {pat}", "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN"})
    assert answer.status_code == 400 and says in answer.json()["message"]
    assert "messages[0].content[1]" in answer.json()["message"]


def test_the_endpoint_takes_images_in_user_messages_only(cortex):
    pat = cortex.issue_pat()
    answer = requests.post(f"{cortex.cortex_url}/api/v2/cortex/v1/chat/completions", timeout=60, json={
        "model": TOOL_MODEL, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]},
            {"role": "user", "content": "and?"}]},
        headers={"Authorization": f"Bearer {pat}", "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN"})
    assert answer.status_code == 400 and "user messages only" in answer.json()["message"]
