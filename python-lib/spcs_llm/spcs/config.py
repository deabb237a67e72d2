"""SPCS model settings: DSS ``config`` dicts of the ``spcs-chat`` and ``spcs-embeddings`` components (llm.json params
+ resolved presets) → validated dataclasses.

The connection settings every backend shares (auth presets, endpoint, timeouts, cost rates, the setting readers)
are read by ``spcs_llm.core.config``; this module adds what only model services have: the service protocol, the
chat template family, the inference engine, LoRA adapters, embedding signatures and request coalescing. The
parameter names are those of ``python-llms/spcs-*/llm.json`` and must not change: saved connections hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from spcs_llm.core.config import (
    AuthConfig,
    CostConfig,
    EndpointConfig,
    choice_setting,
    number_setting,
    parse_auth,
    parse_cost,
    parse_endpoint,
    text_setting,
)
from spcs_llm.core.errors import ConfigurationError

ChatProtocolName = Literal["auto", "openai_chat", "text_generation"]
EmbedProtocolName = Literal["encode", "predict"]
ChatEngine = Literal["python", "vllm"]
JsonFallback = Literal["check", "refuse"]
EmbedRequestFormat = Literal["dataframe_records", "flat"]
FAMILIES = ("auto", "llama2", "zephyr", "mistral", "phi2", "falcon", "chatml", "raw")


def adapter_needs_openai_chat() -> ConfigurationError:
    """An adapter is chosen by the OpenAI-chat signature's `model` param (snowml openai_signatures.py); a
    text-generation signature has no such param, so a text-generation service cannot be asked for one."""
    return ConfigurationError(
        "A LoRA adapter is set, but this service takes text-generation requests, which cannot choose an adapter.",
        fix="Clear 'LoRA adapter', or serve the model with an OpenAI-chat signature (created with adapters=) and "
        "set 'Service protocol' to auto-detect or OpenAI-chat rows.",
    )


@dataclass(frozen=True)
class ChatModelConfig:
    endpoint: EndpointConfig
    auth: AuthConfig
    cost: CostConfig
    protocol: ChatProtocolName = "auto"
    family: str = "auto"
    tokenizer: str | None = None
    default_max_tokens: int = 512
    # How the service generates: "python" (snowml's transformers wrapper: ignores response_format and
    # presence_penalty, always says finish_reason "stop") or "vllm" (honours json_schema, real finish reasons).
    engine: ChatEngine = "python"
    # A JSON request to a service that cannot honour response_format: "check" the reply is JSON, or "refuse" it.
    json_fallback: JsonFallback = "check"
    # A LoRA adapter the service was created with (create_service adapters=): its alias, sent as the OpenAI-chat
    # `model` param; None asks the base model.
    adapter: str | None = None


@dataclass(frozen=True)
class EmbeddingModelConfig:
    endpoint: EndpointConfig
    auth: AuthConfig
    cost: CostConfig
    protocol: EmbedProtocolName = "encode"
    rows_per_request: int = 64
    max_request_bytes: int = 1_000_000
    coalesce_window_ms: float = 5.0  # how long a call waits for concurrent calls to share its requests; 0: never
    tokenizer: str | None = None
    request_format: EmbedRequestFormat = "dataframe_records"
    input_column: str = "sentence"
    signature_params: tuple[str, ...] = ("batch_size", "truncate_dim")


MAX_COALESCE_WINDOW_MS = 50.0  # a lone caller waits at most this long per call


def _coalesce_window_ms(config: dict) -> float:
    value = number_setting(config, "coalesce_window_ms", 5.0, minimum=0.0)
    if value > MAX_COALESCE_WINDOW_MS:
        raise ConfigurationError(
            f"Setting 'coalesce_window_ms' must be at most {MAX_COALESCE_WINDOW_MS:g} ms, got {value:g}: every call "
            "that is not joined by others waits this long.",
            fix="Use a few milliseconds in 'Coalescing window (ms)', or 0 to disable coalescing.")
    return value


def parse_chat_config(config: dict) -> ChatModelConfig:
    protocol: ChatProtocolName = choice_setting(config, "protocol", get_args(ChatProtocolName), "auto")
    adapter = text_setting(config, "adapter")
    engine: ChatEngine = choice_setting(config, "engine", get_args(ChatEngine), "python")
    if adapter and protocol == "text_generation":
        raise adapter_needs_openai_chat()
    if adapter and engine == "python":
        # snowml's Python engine (_openai_chat_wrapper.py generate_chat_completion) takes no `model` argument, so
        # it would answer every request with the base model; adapters are served by the vLLM engine, whose LoRA
        # flags Snowflake sets itself (model_deployment_spec.py blocks --enable-lora / --lora-modules overrides).
        raise ConfigurationError(
            "A LoRA adapter is set, but 'Inference engine' is Python: that engine ignores the adapter and would "
            "answer with the base model.",
            fix="Set 'Inference engine' to vLLM: services created with adapters= serve them on the vLLM engine.",
        )
    return ChatModelConfig(
        endpoint=parse_endpoint(config, default_route="__call__"),
        auth=parse_auth(config),
        cost=parse_cost(config),
        protocol=protocol,
        family=choice_setting(config, "model_family", FAMILIES, "auto"),
        tokenizer=text_setting(config, "tokenizer"),
        default_max_tokens=number_setting(config, "default_max_tokens", 512, minimum=1, cast=int),
        engine=engine,
        json_fallback=choice_setting(config, "json_fallback", get_args(JsonFallback), "check"),
        adapter=adapter,
    )


def parse_embedding_config(config: dict) -> EmbeddingModelConfig:
    protocol: EmbedProtocolName = choice_setting(config, "protocol", get_args(EmbedProtocolName), "encode")
    cost = parse_cost({"instance_family": "CPU_X64_S", **{k: v for k, v in config.items() if v not in (None, "")}})
    return EmbeddingModelConfig(
        endpoint=parse_endpoint(config, default_route="encode" if protocol == "encode" else "predict"),
        auth=parse_auth(config),
        cost=cost,
        protocol=protocol,
        rows_per_request=number_setting(config, "rows_per_request", 64, minimum=1, cast=int),
        max_request_bytes=number_setting(config, "max_request_bytes", 1_000_000, minimum=1024, cast=int),
        coalesce_window_ms=_coalesce_window_ms(config),
        tokenizer=text_setting(config, "tokenizer"),
        **_embedding_signature(config, protocol),
    )


# What our deployment logs: a sentence-transformers model gets snowml's auto-inferred signature, input `sentence`
# and params `batch_size`, `truncate_dim` (sentence_transformers.py _auto_infer_signature; `truncate_dim` only with
# sentence-transformers >= 5); the custom predict model takes one `inputs` column and no params.
_SIGNATURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "encode": {"request_format": "dataframe_records", "input_column": "sentence",
               "signature_params": ("batch_size", "truncate_dim")},
    "predict": {"request_format": "flat", "input_column": "inputs", "signature_params": ()},
}
NO_PARAMS = "none"


def _embedding_signature(config: dict, protocol: str) -> dict[str, Any]:
    """Request format, input column and signature params: the settings, else what our deployment logs.

    Snowflake's sentence-transformers REST tests send ``dataframe_records`` (named columns, params left to their
    defaults), so the number of params does not matter; flat rows are positional and must carry every param.
    """
    defaults = _SIGNATURE_DEFAULTS[protocol]
    chosen = choice_setting(config, "request_format", ("auto", "dataframe_records", "flat"), "auto")
    params_text = text_setting(config, "signature_params")
    if params_text is None:
        params = defaults["signature_params"]
    elif params_text.lower() == NO_PARAMS:
        params = ()
    else:
        params = tuple(name.strip() for name in params_text.split(",") if name.strip())
    return {
        "request_format": defaults["request_format"] if chosen == "auto" else chosen,
        "input_column": text_setting(config, "input_column") or defaults["input_column"],
        "signature_params": params,
    }
