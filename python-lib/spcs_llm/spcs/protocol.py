"""SPCS model-service envelopes and row shapes, as Snowflake's registry REST tests send and read them.

A request is ``{"data": [[row_index, ...], ...]}`` and so is the answer; this module builds rows for the
shapes our services speak (OpenAI chat, HF text generation, sentence-transformers ``encode``, a custom
``predict``), maps answers back to input rows, and turns each row's output into a plain value. It does no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from spcs_llm.core import json_codec
from spcs_llm.core.errors import BadResponseError, RequestRejectedError
from spcs_llm.core.redaction import redact
from spcs_llm.dss.generation import GenerationParams, Usage, openai_generation_fields

_PROTOCOL_FIX = (
    "Set 'Service protocol' to match the model's signature (SHOW FUNCTIONS IN MODEL …): openai_chat for a "
    "'messages' input, text_generation for an 'inputs' input; for embeddings, encode for a sentence-transformers "
    "model and predict for a custom model."
)


@dataclass(frozen=True)
class ChatOutput:
    text: str
    finish_reason: str | None
    usage: Usage | None


@dataclass(frozen=True)
class RowError:
    message: str  # why this row has no result (server said, or missing from the reply)


# --------------------------------------------------------------------------------------------- envelopes


def envelope(rows: Sequence[Any], *, shape: Literal["wide", "flat", "records"] = "wide") -> dict:
    """Wrap rows for the service: wide rows are dicts (``[[i, {..}]]``), flat rows column lists (``[[i, v1, ..]]``),
    records dicts of named columns (``{"dataframe_records": [{..}]}``, answered as ``{"data": [[i, ..]]}`` by
    position; ``RestInferencePayloadFormat`` in snowml's ``registry_model_deployment_test_base.py``)."""
    if shape == "records":
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f"Row {index} of a records envelope must be a dict, got {type(row).__name__}.")
        return {"dataframe_records": list(rows)}
    data: list[list[Any]] = []
    for index, row in enumerate(rows):
        if shape == "wide":
            if not isinstance(row, dict):
                raise ValueError(f"Row {index} of a wide envelope must be a dict, got {type(row).__name__}.")
            data.append([index, row])
        elif shape == "flat":
            if not isinstance(row, (list, tuple)):
                raise ValueError(f"Row {index} of a flat envelope must be a list, got {type(row).__name__}.")
            data.append([index, *row])
        else:
            raise ValueError(f"Unknown envelope shape {shape!r}; use 'wide', 'flat' or 'records'.")
    return {"data": data}


def dump_body(body: dict) -> bytes:
    """The JSON bytes of a request body, as ``requests`` sends ``json=body`` (default separators, no NaN)."""
    return json.dumps(body, allow_nan=False).encode("utf-8")


def payload_size(body: dict) -> int:
    """Bytes of the JSON body as sent, for packing batches under the byte budget."""
    return len(dump_body(body))


def _row_error(output: Any) -> RowError | None:
    """A per-row error object (``{"error": ...}``) as a RowError; None when the output is a result.

    Inferred: the services document only whole-request errors (400 ``{"error": ...}``); a row whose output is an
    ``error`` object is treated as that row's failure so one bad row does not sink its batch.
    """
    if output is None:
        return RowError("The service returned an empty output for this row.")
    if isinstance(output, dict) and output.get("error") not in (None, ""):
        error = output["error"]
        if isinstance(error, dict):
            error = error.get("message") or json.dumps(error)
        return RowError(redact(f"The service reported an error for this row: {error}"))
    return None


def unwrap(payload: Any, expected_rows: int) -> list[Any | RowError]:
    """Map ``{"data": [[i, out], ...]}`` back to input order; a missing or failed row becomes a RowError."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        keys = sorted(payload)[:8] if isinstance(payload, dict) else type(payload).__name__
        detail = f" It said: {payload['error']}" if isinstance(payload, dict) and "error" in payload else ""
        raise BadResponseError(
            f"The endpoint's reply is not a Snowflake model-service envelope {{'data': [[row, output], ...]}} "
            f"(got {keys}).{detail}",
            fix="Check that 'Endpoint' is the ingress host of a model service and that the route names a model "
            "method (__call__, predict, encode).",
        )
    results: list[Any | RowError] = [None] * expected_rows
    seen: set[int] = set()
    for entry in data:
        if not isinstance(entry, (list, tuple)) or len(entry) < 2:
            raise BadResponseError(f"A row of the reply is not [row_index, output]: {str(entry)[:200]}")
        index = entry[0]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < expected_rows:
            raise BadResponseError(
                f"The reply names row {index!r}, but the request had rows 0 to {expected_rows - 1}."
            )
        if index in seen:
            raise BadResponseError(f"The reply holds row {index} twice.")
        seen.add(index)
        output = entry[1] if len(entry) == 2 else list(entry[1:])
        results[index] = _row_error(output) or output
    for index in set(range(expected_rows)) - seen:
        results[index] = RowError(f"Row {index} is missing from the service's reply.")
    return results


_SIGNATURE_MISMATCH = re.compile(
    r"do(?:es)? not match the model signature|input data malformed|"
    r"(?:missing|unknown|unexpected|extra) (?:input )?(?:column|feature)s?|"
    r"the same number of features as signature|keyerror: '(?:messages|inputs|text|input)'|"
    r"signature (?:requires|mismatch)",
    re.IGNORECASE,
)


def looks_like_signature_mismatch(message: str) -> bool:
    """True when a 400's text says the rows did not fit the model's signature (so another protocol may)."""
    return bool(_SIGNATURE_MISMATCH.search(message or ""))


# The words chat templates raise with (Llama 2 and Mistral tokenizer_config.json chat_template, Gemma's), which a
# service passes on in its 400 when apply_chat_template fails in snowml's _openai_chat_wrapper.py.
_TEMPLATE_REFUSAL = re.compile(
    r"roles must alternate|only user and assistant roles are supported|system role (?:is )?not supported",
    re.IGNORECASE,
)


def looks_like_template_refusal(message: str) -> bool:
    """True when a 400's text is the model's chat template refusing the conversation's roles."""
    return bool(_TEMPLATE_REFUSAL.search(message or ""))


# --------------------------------------------------------------------------------------------- chat rows


def text_content(content: Any, position: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # already OpenAI parts: keep the text parts, as one
        texts = [part.get("text") or "" for part in content if isinstance(part, dict) and part.get("type") == "text"]
        if len(texts) == len(content):
            return "".join(texts)
    raise RequestRejectedError(
        f"Message {position} has content that is not text ({type(content).__name__}).",
        fix="Send plain text messages; images and other parts are not supported by this connection.",
    )


def openai_chat_row(messages: Sequence[dict], params: GenerationParams, *, model: str | None = None) -> dict:
    """A wide row for an OpenAI-chat-signature service: ``messages`` plus only the controls that are set.

    ``model`` names a LoRA adapter the service was created with: the signature's ``model`` param, which
    ``create_service(adapters=...)`` maps to an adapter by alias (snowml ``openai_signatures.py``,
    ``model_version_impl.py``); None leaves it unsent, which asks the base model.

    Each message's content is a list holding ONE text part: OPENAI_CHAT_SIGNATURE requires parts since 1.23,
    and snowflake-ml's HF wrapper turns each part into its own message, which would break templates that
    insist on alternating roles.
    """
    if not messages:
        raise RequestRejectedError("The conversation has no messages.", fix="Send at least one user message.")
    wire_messages = []
    for position, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or not role:
            raise RequestRejectedError(
                f"Message {position} has no role.", fix="Give every message a role: system, user or assistant."
            )
        text = text_content(message.get("content"), position)
        wire_messages.append({"role": role, "content": [{"type": "text", "text": text}]})
    row: dict[str, Any] = {"messages": wire_messages, **openai_generation_fields(params)}
    if model is not None:
        row["model"] = model
    return row


def text_generation_row(prompt: str, params: GenerationParams) -> dict:
    """A wide row for an HF text-generation service (``inputs`` plus generation ParamSpecs by their HF names).

    The names are those of snowflake-ml 2.6 ``_GENERATION_PARAM_SPECS`` (params since 1.38; older services
    reject unknown columns). Temperature 0 means greedy decoding (``do_sample`` False, no temperature: HF
    refuses a zero temperature when sampling). Not sent: ``stop_strings`` (the service passes params straight to
    the pipeline, and HF ``generate`` raises on stop strings without a tokenizer, so stops are cut client-side
    by ``parse_chat_output``), the OpenAI penalties and ``response_format`` (no HF equivalent).
    """
    row: dict[str, Any] = {"inputs": prompt}
    if params.max_tokens is not None:
        row["max_new_tokens"] = int(params.max_tokens)
    if params.temperature is not None and params.temperature <= 0:
        row["do_sample"] = False
        return row
    if params.temperature is not None:
        row["do_sample"] = True
        row["temperature"] = float(params.temperature)
    if params.top_p is not None:
        row["do_sample"] = True
        row["top_p"] = float(params.top_p)
    return row


# --------------------------------------------------------------------------------------------- chat outputs


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if isinstance(prompt, (int, float)) and isinstance(completion, (int, float)):
        return Usage(prompt_tokens=int(prompt), completion_tokens=int(completion))
    return None


def _unknown_shape(row_output: Any, what: str) -> BadResponseError:
    seen = sorted(row_output)[:8] if isinstance(row_output, dict) else type(row_output).__name__
    return BadResponseError(f"The service's {what} output has an unexpected shape (got {seen}).", fix=_PROTOCOL_FIX)


def _generated_text(row_output: Any) -> str | None:
    """The ``generated_text`` of a legacy text-generation output, whichever version encoded it
    (snowflake-ml ``model/_signatures/utils.py``: JSON text up to 1.7, a list since 1.8)."""
    if isinstance(row_output, dict):
        if isinstance(row_output.get("generated_text"), str):  # models.llm (vLLM, ≤1.6)
            return row_output["generated_text"]
        outputs = row_output.get("outputs")
        if isinstance(outputs, str):  # ≤1.7: JSON text of [{"generated_text": ...}]
            try:
                outputs = json.loads(outputs)
            except ValueError:
                return None
        return _generated_text(outputs)
    if isinstance(row_output, list) and row_output:  # 1.8+: [{"generated_text": ...}], sometimes nested once
        return _generated_text(row_output[0])
    return None


def parse_chat_output(row_output: Any, *, prompt: str | None = None, stop: Sequence[str] = ()) -> ChatOutput:
    """One row's output → text, finish reason and usage, for OpenAI chat and legacy text-generation shapes.

    A legacy service echoes the prompt before the completion (``return_full_text`` is not a ParamSpec), so a
    leading ``prompt`` is removed and the rest stripped; the text is cut at the first stop string, which makes
    the finish reason "stop".
    """
    if isinstance(row_output, dict) and "choices" in row_output:
        choices = row_output["choices"]
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _unknown_shape(row_output, "chat completion")
        message = choices[0].get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, (str, type(None))):
            raise _unknown_shape(row_output, "chat completion")
        text, stopped = _cut_at_stop(content or "", stop)
        finish = "stop" if stopped else choices[0].get("finish_reason")
        return ChatOutput(text=text, finish_reason=finish, usage=_usage(row_output.get("usage")))
    generated = _generated_text(row_output)
    if generated is None:
        raise _unknown_shape(row_output, "chat")
    if prompt and generated.startswith(prompt):
        generated = generated[len(prompt):]
    text, stopped = _cut_at_stop(generated, stop)
    return ChatOutput(text=text.strip(), finish_reason="stop" if stopped else None, usage=None)


# --------------------------------------------------------------------------------------------- embeddings


def _embedding_text(text: Any) -> str:
    if not isinstance(text, str):
        raise RequestRejectedError(
            f"An embedding input must be text, got {type(text).__name__}.", fix="Send the texts to embed as strings."
        )
    return text


def embedding_row(text: str, *, signature_params: int = 0) -> list:
    """A flat row ``[text, null, ..]``: the one input, then a null (= the default) for every signature param.

    Flat rows are positional and must carry every column (snowml ``registry_custom_model_params_test.py``: "Flat
    format requires ALL columns present"; its "none" cases send null params and get the defaults).
    """
    return [_embedding_text(text), *([None] * signature_params)]


def embedding_record(text: str, input_column: str) -> dict:
    """A ``dataframe_records`` row ``{input_column: text}``; params are left out, so they take their defaults."""
    return {input_column: _embedding_text(text)}


_JSON_NUMBERS = {float, int}


def _vector(value: Any) -> list[float] | None:
    if isinstance(value, str):
        try:
            value = json_codec.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not isinstance(value, list) or not value:
        return None
    # One C-level pass over the types first: this runs for every row of every batch (bench/results/embed.md).
    # Counting the floats in a list of the types costs less than building a set of them (no hashing per value:
    # 5.1 vs 6.6 µs for 384 floats, bench/results/fast_embed.md).
    types = list(map(type, value))
    if types.count(float) == len(types):
        return value
    kinds = set(types)
    if not kinds <= _JSON_NUMBERS and not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        return None  # bool is its own type, so true/false never pass as numbers
    return [float(x) for x in value]


def _all_finite(vector: list[float]) -> bool:
    """A NaN or an infinity anywhere makes the sum non-finite, so a finite sum settles it in one C-level pass."""
    return math.isfinite(sum(vector)) or all(math.isfinite(x) for x in vector)


def parse_embedding_output(row_output: Any, *, protocol: Literal["encode", "predict"]) -> list[float]:
    """One row's output → the embedding vector.

    encode (sentence-transformers): ``{"output": [...]}``, or the single list-of-numbers value of the row dict
    (``output_feature_0`` with snowflake-ml 2.6). predict (the reference notebook's custom model):
    ``{"outputs": "<JSON list>"}`` or a list. Empty, non-numeric or non-finite vectors are refused.
    """
    if isinstance(row_output, dict):
        key = "output" if protocol == "encode" else "outputs"
        if key in row_output:
            candidates = [row_output[key]]
        else:
            candidates = [v for v in row_output.values() if _vector(v) is not None]
            if len(candidates) > 1:
                raise BadResponseError(
                    f"The embedding output has several vector columns ({sorted(row_output)}); cannot tell which "
                    "one is the embedding.",
                    fix=_PROTOCOL_FIX,
                )
    else:
        candidates = [row_output]
    vector = _vector(candidates[0]) if candidates else None
    if vector is None:
        raise _unknown_shape(row_output, f"embedding ({protocol})")
    if not _all_finite(vector):
        raise BadResponseError(
            "The embedding holds NaN or infinite values.",
            fix="Check the model service: its embedding model is returning invalid numbers for this input.",
        )
    return vector
