"""Images to Cortex: parts reach the request in order and intact; bad images and text-only models refused first."""

import base64
import json
import struct
import zlib

import pytest
import responses
from cortex_support import CHAT_URL, chat_client
from dataikuapi.dss.llm_tracing import SpanBuilder

from error_checks import assert_fix
from spcs_llm.core.errors import ConfigurationError, RequestRejectedError
from spcs_llm.cortex.dss_adapter import CortexChatAdapter
from spcs_llm.cortex.images import MAX_IMAGE_BYTES

ANSWER = {"choices": [{"message": {"content": "a red square"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 20, "completion_tokens": 3}}


def png(width=2, height=2, rgb=(255, 0, 0)) -> bytes:
    """A real PNG made here (no file, no Pillow)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png()
PNG64 = base64.b64encode(PNG).decode()
GIF64 = base64.b64encode(b"GIF89a" + b"\x00" * 20).decode()


def adapter(model="claude-3-5-sonnet", **extra):
    return CortexChatAdapter(chat_client(model=model, **extra))


def image_query(*parts):
    return {"messages": [{"role": "system", "content": "Describe images."}, {"role": "user", "parts": list(parts)}]}


def test_image_parts_reach_the_request_in_order_and_intact(http):
    http.add(responses.POST, CHAT_URL, json=ANSWER)
    trace = SpanBuilder("root")
    answer = adapter().process(image_query(
        {"type": "TEXT", "text": "First this:"},
        {"type": "IMAGE_INLINE", "inlineImage": PNG64, "imageMimeType": "image/png"},
        {"type": "TEXT", "text": "then this:"},
        {"type": "IMAGE_URI", "imageUrl": f"data:image/gif;base64,{GIF64}"},
    ), {}, trace)
    assert answer["text"] == "a red square"
    body = json.loads(http.calls[0].request.body)
    assert body["messages"][0] == {"role": "system", "content": "Describe images."}
    content = body["messages"][1]["content"]
    assert [part["type"] for part in content] == ["text", "image_url", "text", "image_url"]
    assert content[0]["text"] == "First this:" and content[2]["text"] == "then this:"
    assert content[1]["image_url"]["url"] == f"data:image/png;base64,{PNG64}"
    assert base64.b64decode(content[1]["image_url"]["url"].split(",", 1)[1]) == PNG
    assert content[3]["image_url"]["url"] == f"data:image/gif;base64,{GIF64}"
    span = trace.to_dict()["children"][0]
    assert span["attributes"]["cortex.images"] == 2
    assert PNG64 not in json.dumps(trace.to_dict())  # image bytes never reach the trace


def test_an_image_only_user_turn_is_a_question_and_text_turns_merge_around_it(http):
    http.add(responses.POST, CHAT_URL, json=ANSWER)
    query = {"messages": [{"role": "user", "content": "Look:"},
                          {"role": "user", "parts": [{"type": "IMAGE_INLINE", "inlineImage": PNG64}]}]}
    adapter().process(query, {}, None)
    content = json.loads(http.calls[0].request.body)["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")  # type read from the bytes


def test_a_text_only_model_refuses_an_image_before_any_request(http):
    with pytest.raises(RequestRejectedError) as refused:
        adapter("llama3.1-70b").process(image_query({"type": "IMAGE_INLINE", "inlineImage": PNG64}), {}, None)
    assert "takes text only" in str(refused.value) and "Model accepts images" in refused.value.fix
    assert len(http.calls) == 0


def test_the_setting_overrides_the_list_both_ways(http):
    http.add(responses.POST, CHAT_URL, json=ANSWER)
    adapter("my-vision-model", accepts_images="yes").process(
        image_query({"type": "IMAGE_INLINE", "inlineImage": PNG64}), {}, None)
    assert len(http.calls) == 1
    with pytest.raises(RequestRejectedError) as refused:
        adapter("claude-4-sonnet", accepts_images="no").process(
            image_query({"type": "IMAGE_INLINE", "inlineImage": PNG64}), {}, None)
    assert_fix(refused, "Model accepts images")
    with pytest.raises(ConfigurationError) as misconfigured:
        adapter(accepts_images="maybe")
    assert "'accepts_images'" in misconfigured.value.message
    assert_fix(misconfigured, "Custom LLM connection")


BAD_IMAGES = [
    ({"type": "IMAGE_INLINE", "inlineImage": "not base64!!"}, "not valid base64", "base64"),
    ({"type": "IMAGE_INLINE", "inlineImage": base64.b64encode(b"%PDF-1.7 hello").decode()},
     "not a JPEG, PNG, GIF or WebP", "Convert"),
    ({"type": "IMAGE_INLINE", "inlineImage": PNG64, "imageMimeType": "image/jpeg"}, "its bytes are image/png",
     "image/png"),
    ({"type": "IMAGE_INLINE", "inlineImage": PNG64, "imageMimeType": "image/tiff"}, "image/tiff", "PNG"),
    ({"type": "IMAGE_INLINE", "inlineImage": base64.b64encode(PNG + b"\x00" * MAX_IMAGE_BYTES).decode()},
     "over Cortex's", "Resize"),
    ({"type": "IMAGE_URI", "imageUrl": "https://user:secret@example.com/cat.png?sig=secret"}, "does not download",
     "inline"),
    ({"type": "IMAGE_URI", "imageUrl": "data:image/png,secret-raw-bytes"}, "'data:image/png,…'", "base64"),
    ({"type": "IMAGE_INLINE", "inlineImage": base64.b64encode(png(8001, 1)).decode()}, "8001x1 pixels", "Scale"),
    ({"type": "IMAGE_INLINE", "inlineImage": ""}, "empty", "base64"),
]


@pytest.mark.parametrize(("part", "says", "fix"), BAD_IMAGES)
def test_bad_images_are_refused_before_sending_naming_message_part_and_fix(http, part, says, fix):
    query = image_query({"type": "TEXT", "text": "What is it?"}, part)
    with pytest.raises(RequestRejectedError) as refused:
        adapter().process(query, {}, None)
    assert "Message 1, part 1" in str(refused.value) and says in str(refused.value)
    assert fix in refused.value.fix
    assert "secret" not in str(refused.value)
    assert len(http.calls) == 0


def test_an_image_outside_a_user_turn_is_refused(http):
    query = {"messages": [{"role": "user", "content": "hi"},
                          {"role": "assistant", "parts": [{"type": "IMAGE_INLINE", "inlineImage": PNG64}]}]}
    with pytest.raises(RequestRejectedError) as refused:
        adapter().process(query, {}, None)
    assert "user messages only" in str(refused.value)
    assert len(http.calls) == 0


def test_json_output_still_goes_with_an_image(http):
    http.add(responses.POST, CHAT_URL, json=ANSWER)
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}}
    adapter().process(image_query({"type": "IMAGE_INLINE", "inlineImage": PNG64}), {
        "responseFormat": {"type": "json", "schema": schema}}, None)
    body = json.loads(http.calls[0].request.body)
    assert body["response_format"]["json_schema"]["schema"] == schema


def test_several_images_only_for_claude_and_llama_models(http):
    http.add(responses.POST, CHAT_URL, json=ANSWER)
    two = image_query({"type": "IMAGE_INLINE", "inlineImage": PNG64}, {"type": "IMAGE_INLINE", "inlineImage": GIF64})
    with pytest.raises(RequestRejectedError) as refused:
        adapter("openai-gpt-4.1").process(two, {}, None)
    assert "only Claude and Llama" in str(refused.value) and "one image per query" in refused.value.fix
    assert len(http.calls) == 0
    adapter("llama4-maverick").process(two, {}, None)
    adapter("openai-gpt-4.1").process(image_query({"type": "IMAGE_INLINE", "inlineImage": PNG64}), {}, None)
    assert len(http.calls) == 2


def test_an_unknown_part_beside_an_image_is_refused_rather_than_dropped(http):
    query = image_query({"type": "IMAGE_INLINE", "inlineImage": PNG64}, {"type": "DOCUMENT_INLINE", "data": "JVBERi0="})
    with pytest.raises(RequestRejectedError) as refused:
        adapter().process(query, {}, None)
    assert "Message 1, part 1" in str(refused.value) and "'DOCUMENT_INLINE'" in str(refused.value)
    assert len(http.calls) == 0
