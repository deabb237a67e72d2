"""Envelopes, row builders and output parsers of spcs_llm.spcs.protocol."""

import json
import math

import pytest

from error_checks import assert_fix
from spcs_llm.core.errors import BadResponseError, RequestRejectedError
from spcs_llm.spcs.protocol import (
    ChatOutput,
    GenerationParams,
    RowError,
    Usage,
    dump_body,
    embedding_row,
    envelope,
    looks_like_signature_mismatch,
    openai_chat_row,
    parse_chat_output,
    parse_embedding_output,
    payload_size,
    text_generation_row,
    unwrap,
)

# ----------------------------------------------------------------------------------------------- envelopes


def test_wide_envelope_numbers_rows_and_keeps_dicts():
    assert envelope([{"a": 1}, {"a": 2}]) == {"data": [[0, {"a": 1}], [1, {"a": 2}]]}


def test_flat_envelope_spreads_columns_after_the_index():
    assert envelope([["x", 1], ("y", 2)], shape="flat") == {"data": [[0, "x", 1], [1, "y", 2]]}


@pytest.mark.parametrize("rows, shape", [([["x"]], "wide"), ([{"a": 1}], "flat"), ([{"a": 1}], "tall")])
def test_envelope_refuses_rows_of_the_wrong_kind(rows, shape):
    with pytest.raises(ValueError):
        envelope(rows, shape=shape)


def test_unwrap_maps_rows_back_by_index_in_any_order():
    payload = {"data": [[2, {"v": "c"}], [0, {"v": "a"}], [1, {"v": "b"}]]}
    assert unwrap(payload, 3) == [{"v": "a"}, {"v": "b"}, {"v": "c"}]


def test_unwrap_turns_missing_rows_into_row_errors():
    results = unwrap({"data": [[1, {"v": "b"}]]}, 3)
    assert results[1] == {"v": "b"}
    assert isinstance(results[0], RowError) and "Row 0 is missing" in results[0].message
    assert isinstance(results[2], RowError) and "Row 2" in results[2].message


def test_unwrap_turns_error_objects_and_empty_outputs_into_row_errors():
    payload = {"data": [[0, {"error": "CUDA out of memory"}], [1, {"error": {"message": "too long"}}], [2, None]]}
    errors = unwrap(payload, 3)
    assert [type(e) for e in errors] == [RowError, RowError, RowError]
    assert "CUDA out of memory" in errors[0].message
    assert "too long" in errors[1].message
    assert "empty output" in errors[2].message


def test_unwrap_keeps_a_null_error_field_as_a_result():
    assert unwrap({"data": [[0, {"output": [1.0], "error": None}]]}, 1) == [{"output": [1.0], "error": None}]


def test_unwrap_returns_trailing_flat_columns_as_a_list():
    assert unwrap({"data": [[0, "a", 1]]}, 1) == [["a", 1]]


@pytest.mark.parametrize(
    "payload",
    [
        "<html>Sign in to Snowflake</html>",
        {"error": "Prediction failed: boom"},
        {"predictions": [1, 2]},
        {"data": "nope"},
    ],
)
def test_unwrap_refuses_non_envelopes_and_names_the_fix(payload):
    with pytest.raises(BadResponseError) as caught:
        unwrap(payload, 1)
    assert "Endpoint" in str(caught.value)


def test_unwrap_quotes_the_server_error_when_there_is_one():
    with pytest.raises(BadResponseError, match="Prediction failed: boom"):
        unwrap({"error": "Prediction failed: boom"}, 1)


@pytest.mark.parametrize(
    "data",
    [[[3, {}]], [[-1, {}]], [["0", {}]], [[True, {}]], [[0, {}], [0, {}]], [[0]], [{"row": 0}]],
)
def test_unwrap_refuses_bad_indices_duplicates_and_malformed_rows(data):
    with pytest.raises(BadResponseError) as caught:
        unwrap({"data": data}, 2)
    assert_fix(caught, "endpoint URL", "'Service protocol'")


def test_payload_size_is_the_byte_length_of_the_json_sent():
    body = envelope([{"inputs": "héllo"}])
    assert payload_size(body) == len(json.dumps(body).encode("utf-8")) == len(dump_body(body))
    assert payload_size(envelope([{"inputs": "héllo" * 10}])) > payload_size(body)


def test_dump_body_refuses_nan_like_requests_would():
    with pytest.raises(ValueError):
        dump_body({"data": [[0, math.nan]]})


@pytest.mark.parametrize(
    "message",
    [
        "Input data columns do not match the model signature",
        '{"error": "Input data malformed: missing column messages"}',
        "KeyError: 'messages'",
        "Data does not have the same number of features as signature.",
    ],
)
def test_signature_mismatch_messages_are_recognised(message):
    assert looks_like_signature_mismatch(message)


@pytest.mark.parametrize("message", ["Too many requests", "CUDA out of memory", "", "Prediction failed: timeout"])
def test_other_messages_are_not_signature_mismatches(message):
    assert not looks_like_signature_mismatch(message)


# ----------------------------------------------------------------------------------------------- chat rows


def test_openai_row_has_one_text_part_per_message_and_no_unset_params():
    row = openai_chat_row(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], GenerationParams()
    )
    assert row == {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ]
    }


def test_openai_row_carries_the_params_that_are_set_by_their_openai_names():
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    params = GenerationParams(
        max_tokens=64,
        temperature=0.0,
        top_p=0.9,
        stop=("\n\n", "END"),
        presence_penalty=0.5,
        frequency_penalty=0.25,
        response_format=schema,
    )
    row = openai_chat_row([{"role": "user", "content": "Hi"}], params)
    assert {k: v for k, v in row.items() if k != "messages"} == {
        "temperature": 0.0,
        "max_completion_tokens": 64,
        "top_p": 0.9,
        "stop": ["\n\n", "END"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "response_format": schema,
    }


def test_openai_row_joins_existing_text_parts_into_one():
    row = openai_chat_row(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
        GenerationParams(),
    )
    assert row["messages"][0]["content"] == [{"type": "text", "text": "ab"}]


@pytest.mark.parametrize(
    "messages",
    [[], [{"content": "no role"}], [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]],
)
def test_openai_row_refuses_unusable_messages(messages):
    with pytest.raises(RequestRejectedError) as refused:
        openai_chat_row(messages, GenerationParams())
    remedy = "at least one user message" if not messages else "a role" if "role" not in messages[0] else "plain text"
    assert_fix(refused, remedy)


def test_text_generation_row_maps_params_to_hf_names():
    row = text_generation_row("Instruct: hi\nOutput:", GenerationParams(max_tokens=32, temperature=0.7, top_p=0.9))
    assert row == {
        "inputs": "Instruct: hi\nOutput:",
        "max_new_tokens": 32,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
    }


def test_text_generation_row_is_greedy_at_temperature_zero():
    row = text_generation_row("p", GenerationParams(temperature=0, top_p=0.5))
    assert row == {"inputs": "p", "do_sample": False}


def test_text_generation_row_sends_no_stop_strings_or_openai_only_params():
    row = text_generation_row(
        "p", GenerationParams(stop=("x",), presence_penalty=1.0, frequency_penalty=1.0, response_format={"type": "x"})
    )
    assert row == {"inputs": "p"}


# ----------------------------------------------------------------------------------------------- chat outputs

OPENAI_OUTPUT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1.7e9,
    "model": "tiny",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello!", "name": None}, "logprobs": None,
         "finish_reason": "length"}
    ],
    "usage": {"completion_tokens": 3, "prompt_tokens": 11, "total_tokens": 14},
}


def test_openai_output_gives_text_finish_reason_and_usage():
    out = parse_chat_output(OPENAI_OUTPUT)
    assert out == ChatOutput(text="Hello!", finish_reason="length", usage=Usage(prompt_tokens=11, completion_tokens=3))
    assert out.usage.total_tokens == 14


def test_openai_output_is_cut_at_a_stop_string():
    out = parse_chat_output(OPENAI_OUTPUT, stop=("lo",))
    assert (out.text, out.finish_reason) == ("Hel", "stop")


def test_openai_output_with_null_or_part_list_content():
    null = {**OPENAI_OUTPUT, "choices": [{"message": {"content": None}, "finish_reason": "stop"}]}
    two_parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    parts = {**OPENAI_OUTPUT, "choices": [{"message": {"content": two_parts}}]}
    assert parse_chat_output(null).text == ""
    assert parse_chat_output(parts).text == "ab"
    with pytest.raises(BadResponseError) as caught:
        parse_chat_output({**OPENAI_OUTPUT, "choices": [{"message": {"content": 42}}]})
    assert_fix(caught, "'Service protocol'", "SHOW FUNCTIONS IN MODEL")


def test_openai_output_without_usage_has_none():
    output = {**OPENAI_OUTPUT, "usage": None}
    assert parse_chat_output(output).usage is None


@pytest.mark.parametrize(
    "row_output",
    [
        {"outputs": json.dumps([{"generated_text": "PROMPT The answer."}])},  # ≤1.7
        {"outputs": [{"generated_text": "PROMPT The answer."}]},  # 1.8+
        {"outputs": [[{"generated_text": "PROMPT The answer."}]]},  # nested once
        {"generated_text": "PROMPT The answer."},  # models.llm
    ],
)
def test_legacy_outputs_of_every_version_strip_the_echoed_prompt(row_output):
    out = parse_chat_output(row_output, prompt="PROMPT")
    assert out == ChatOutput(text="The answer.", finish_reason=None, usage=None)


def test_legacy_output_without_an_echo_is_kept():
    assert parse_chat_output({"generated_text": " Just this. "}, prompt="PROMPT").text == "Just this."


def test_legacy_output_is_cut_at_the_first_stop_string():
    out = parse_chat_output(
        {"outputs": [{"generated_text": "Q:A1\nInstruct: more\nUser: x"}]}, prompt="Q:", stop=("\nUser:", "\nInstruct:")
    )
    assert (out.text, out.finish_reason) == ("A1", "stop")


@pytest.mark.parametrize(
    "row_output",
    [{"prediction": "x"}, {"outputs": "not json"}, {"outputs": []}, {"choices": []}, "text", 42, None],
)
def test_unknown_chat_shapes_name_the_service_protocol_setting(row_output):
    with pytest.raises(BadResponseError) as caught:
        parse_chat_output(row_output)
    assert "Service protocol" in str(caught.value)


# ----------------------------------------------------------------------------------------------- embeddings


def test_embedding_row_is_one_positional_column():
    assert embedding_row("hello") == ["hello"]
    assert envelope([embedding_row("a"), embedding_row("b")], shape="flat") == {"data": [[0, "a"], [1, "b"]]}


def test_embedding_row_refuses_non_text():
    with pytest.raises(RequestRejectedError) as refused:
        embedding_row(None)
    assert_fix(refused, "as strings")


@pytest.mark.parametrize(
    "row_output",
    [{"output": [0.1, 0.2]}, {"output_feature_0": [0.1, 0.2]}, {"output_feature_0": [0.1, 0.2], "_ID": 0}, [0.1, 0.2]],
)
def test_encode_outputs_give_the_vector(row_output):
    assert parse_embedding_output(row_output, protocol="encode") == [0.1, 0.2]


@pytest.mark.parametrize("row_output", [{"outputs": "[0.5, 1]"}, {"outputs": [0.5, 1]}, [0.5, 1], "[0.5, 1]"])
def test_predict_outputs_give_the_vector(row_output):
    assert parse_embedding_output(row_output, protocol="predict") == [0.5, 1.0]


@pytest.mark.parametrize(
    "row_output",
    [
        {"output": []},
        {"output": ["a", "b"]},
        {"output": [True, False]},
        {"outputs": "[NaN, 1.0]"},
        {"output": [1.0, float("inf")]},
        {"label": "x"},
        {"a": [1.0], "b": [2.0]},
        "not json",
    ],
)
def test_bad_embeddings_are_refused(row_output):
    with pytest.raises(BadResponseError) as caught:
        parse_embedding_output(row_output, protocol="encode")
    invalid_numbers = "NaN" in str(row_output) or "inf" in str(row_output)
    assert_fix(caught, "invalid numbers" if invalid_numbers else "'Service protocol'")


def test_server_text_quoted_in_errors_carries_no_registered_secret():
    from spcs_llm.core.redaction import register_secret

    secret = "pat-secret-value-0123456789"
    register_secret(secret)
    with pytest.raises(BadResponseError) as caught:
        unwrap({"error": f"Invalid token {secret}"}, 1)
    assert secret not in str(caught.value)
    row_error = unwrap({"data": [[0, {"error": f'Authorization: Snowflake Token="{secret}"'}]]}, 1)[0]
    with pytest.raises(BadResponseError) as caught:
        parse_chat_output({"token": secret})
    assert secret not in str(caught.value)
    assert isinstance(row_error, RowError) and secret not in row_error.message
