"""DSS completion settings checked before any request, for the SPCS and the Cortex chat components alike.

DSS hands a query's completion settings to the component as JSON values under their DSS names (dataikuapi
``dss/langchain/llm.py``: maxOutputTokens, temperature, topK, topP, frequencyPenalty, presencePenalty, logitBias,
logProbs, topLogProbs, and stopSequences). A value of the wrong type or out of range is refused here, naming the
setting and its valid range, instead of a bare ``ValueError`` from ``float()`` or a 400 from the service after a
round trip (and, on a suspended SPCS service, after a cold start).

Numbers may be ints, floats or numeric text ("0.5"); ``True``/``False``, NaN, infinities and other text are not
numbers. A setting that is absent or ``None`` means "the service's default" and is left out of the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import RequestRejectedError


@dataclass(frozen=True)
class NumberRule:
    """A numeric setting's valid range; ``valid`` is how the range is told to the user."""

    valid: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low bound itself is not allowed
    integer: bool = False

    def allows(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high


# The ranges are those of the OpenAI chat-completion API, which both backends implement:
# - SPCS: snowflake-ml 2.6 ``snowflake/ml/model/openai_signatures.py`` types temperature, top_p and the penalties as
#   DOUBLE, max_completion_tokens as INT64 and stop as a list of STRING; the vLLM engine behind it refuses a negative
#   temperature, a top_p outside (0, 1], penalties outside [-2, 2] and max tokens below 1 (vLLM
#   ``vllm/sampling_params.py``, ``SamplingParams._verify_args``), and the transformers engine
#   (``_packager/model_handlers/huggingface/_openai_chat_wrapper.py``) takes the same values.
# - Cortex: Snowflake's Cortex REST API docs describe /v1/chat/completions as OpenAI-compatible. Inferred: the
#   upper bound of temperature is the OpenAI one (2); a provider with a narrower range (Anthropic models take 0-1)
#   may still refuse a value above its own with a 400 that names it.
# topK, logitBias, logProbs and topLogProbs are checked too, though neither service takes them today (the
# snowflake-ml 2.6 OpenAI signature has no top_k, logit_bias or logprobs param): they are not sent. Inferred from
# vLLM: top_k -1 or 0 means "no limit"; logit bias and top logprobs follow the OpenAI API reference.
NUMBER_RULES: dict[str, NumberRule] = {
    "temperature": NumberRule("a number from 0 to 2", low=0.0, high=2.0),
    "topP": NumberRule("a number greater than 0 and at most 1", low=0.0, high=1.0, low_open=True),
    "topK": NumberRule("a whole number: -1 or 0 for no limit, or at least 1", low=-1, integer=True),
    # 0 stays "unset" (the model's default max output tokens), as it always has in this plugin.
    "maxOutputTokens": NumberRule("a whole number of at least 1 (0 means the default)", low=0, integer=True),
    "presencePenalty": NumberRule("a number from -2 to 2", low=-2.0, high=2.0),
    "frequencyPenalty": NumberRule("a number from -2 to 2", low=-2.0, high=2.0),
    "topLogProbs": NumberRule("a whole number from 0 to 20", low=0, high=20, integer=True),
}
STOP_SEQUENCES_VALID = "a list of strings"
LOGIT_BIAS_VALID = "a map of token ids (whole numbers) to numbers from -100 to 100"
LOGIT_BIAS_RULE = NumberRule(LOGIT_BIAS_VALID, low=-100.0, high=100.0)
LOG_PROBS_VALID = "true or false"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _refuse(name: str, valid: str, value: Any) -> RequestRejectedError:
    return RequestRejectedError(
        f"The completion setting '{name}' must be {valid}; got {_shown(value)}.",
        fix=f"Set '{name}' to {valid} in the query's completion settings, or leave it unset for the model's default.",
    )


def _number(value: Any) -> float | None:
    """The value as a finite float, or None when it is not a number (bool and non-numeric text are not)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def check_number(name: str, value: Any, rule: NumberRule) -> float | int:
    """One numeric setting, checked against its rule: an int for whole-number settings, else a float."""
    number = _number(value)
    if number is None or (rule.integer and not number.is_integer()) or not rule.allows(number):
        raise _refuse(name, rule.valid, value)
    return int(number) if rule.integer else number


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise _refuse("stopSequences", STOP_SEQUENCES_VALID, value)
    return tuple(value)


def _logit_bias(value: Any) -> dict[int, float]:
    if not isinstance(value, Mapping):
        raise _refuse("logitBias", LOGIT_BIAS_VALID, value)
    bias: dict[int, float] = {}
    for token, weight in value.items():
        token_id = _number(token)
        if token_id is None or not token_id.is_integer() or token_id < 0:
            raise _refuse("logitBias", LOGIT_BIAS_VALID, {token: weight})
        weight_number = _number(weight)
        if weight_number is None or not LOGIT_BIAS_RULE.allows(weight_number):
            raise _refuse("logitBias", LOGIT_BIAS_VALID, {token: weight})
        bias[int(token_id)] = weight_number
    return bias


def check_generation_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The generation settings a query sets, checked and normalised, by their DSS names.

    Refuses the first bad one with a ``RequestRejectedError`` naming the setting and its valid range. Settings
    that are absent or ``None`` are left out; other keys (messages, tools, responseFormat, …) are not looked at.
    """
    settings = settings or {}
    checked: dict[str, Any] = {}
    for name, rule in NUMBER_RULES.items():
        if settings.get(name) is not None:
            checked[name] = check_number(name, settings[name], rule)
    if settings.get("stopSequences") is not None:
        checked["stopSequences"] = _stop_sequences(settings["stopSequences"])
    if settings.get("logitBias") is not None:
        checked["logitBias"] = _logit_bias(settings["logitBias"])
    if settings.get("logProbs") is not None:
        if not isinstance(settings["logProbs"], bool):
            raise _refuse("logProbs", LOG_PROBS_VALID, settings["logProbs"])
        checked["logProbs"] = settings["logProbs"]
    return checked
