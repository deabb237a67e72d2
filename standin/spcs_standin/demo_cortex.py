"""The Cortex part of ``make demo``: the ``cortex-chat`` and ``cortex-embedding`` components against the stand-in's
Cortex endpoints on the local account host, signed in with the same DSS OAuth access token as the SPCS part.

It streams a reply chunk by chunk as it arrives (the stand-in paces tokens like a real model), runs one tool-call
round trip on the tiny tool-calling model (the model's own call → the demo runs the tool → the model's answer),
sends one image (a tiny PNG made in code) that the stand-in describes, and embeds the knowledge bank's
corpus. The tiny models are not in the shipped Cortex price table, so the demo sets
their per-token prices on the components, as a user does for a model the table lacks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.resources import resource_path
from spcs_llm.cortex.cost import CORTEX_CREDITS_PER_MILLION, CORTEX_RATES_AS_OF
from spcs_standin.cache import cache_root
from spcs_standin.cortex_engines import CHAT_MODEL, EMBED_MODEL, TOOL_MODEL
from spcs_standin.cortex_images import tiny_png
from spcs_standin.harness import load_component
from spcs_standin.settings import StandinSettings
from spcs_standin.stack import LocalStack
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages
from spcs_standin.tinytools import RECIPE_VERSION, WEATHER_REPORTS, WEATHER_TOOL, tools_model_dir

if TYPE_CHECKING:
    from spcs_standin.demo_usage import UsageTable

STREAM_PACE_S = 0.03  # the stand-in's pause after each streamed token: visible, and still under a second
STREAMED_EXCHANGE = CANNED_EXCHANGES[4]  # the longest canned reply: many chunks
WEATHER_CITY = "Paris"
# The shipped rates each tiny model is priced like (a Cortex model of the same family and kind).
PRICED_LIKE = {CHAT_MODEL: "llama3.1-8b", TOOL_MODEL: "claude-3-5-sonnet", EMBED_MODEL: "snowflake-arctic-embed-m"}


@dataclass(frozen=True)
class StreamReport:
    chunks: list[str]
    first_chunk_s: float
    total_s: float
    footer: dict[str, Any]


def start_tools_model_build() -> threading.Thread | None:
    """Train the tiny tool-calling model in the background if this machine has not built it yet (once, 20-40 s);
    the stand-in waits on the same build lock if it needs the model first."""
    if (cache_root() / RECIPE_VERSION / "config.json").is_file():
        return None
    print("  The tiny tool-calling model is trained once per machine (about 20-40 s on CPU): training it now, "
          "in the background, while the SPCS part runs.", flush=True)
    builder = threading.Thread(target=tools_model_dir, name="tools-model-build", daemon=True)
    builder.start()
    return builder


def price_settings(model: str) -> dict[str, float]:
    """The component's 'Input / Output credits per million tokens', copied from the model it is priced like (an
    embedding model bills input tokens only, and its component has no output setting)."""
    input_rate, output_rate = CORTEX_CREDITS_PER_MILLION[PRICED_LIKE[model]]
    if not output_rate:
        return {"input_credits_per_million": input_rate}
    return {"input_credits_per_million": input_rate, "output_credits_per_million": output_rate}


def _rates_text(rates: dict[str, float]) -> str:
    if "output_credits_per_million" not in rates:
        return f"{rates['input_credits_per_million']:g} per million input tokens"
    return f"{rates['input_credits_per_million']:g} in / {rates['output_credits_per_million']:g} out"


def cortex_config(token: str, stack: LocalStack, settings: StandinSettings, model: str) -> dict[str, Any]:
    """The DSS config of a Cortex component: the same per-user OAuth preset as the SPCS ones, the model, prices."""
    return {
        "auth_type": "oauth",
        "oauth_preset": {"snowflake_oauth": token, "account_url": stack.cortex_url, "role": settings.role,
                         "oauth_mode": "auto"},
        "model": model,
        **price_settings(model),
    }


def run_cortex(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable,
               tools_build: threading.Thread | None) -> None:
    prices = "; ".join(f"{model} like {like} ({_rates_text(price_settings(model))})"
                       for model, like in PRICED_LIKE.items())
    print(f"\n== Snowflake Cortex backend (the Cortex REST API on the same account host, same OAuth token). "
          f"The tiny models are not in the shipped price table (as of {CORTEX_RATES_AS_OF}), so their components "
          f"set 'Input / Output credits per million tokens' as a user would: {prices}.")
    stream_reply(stack, settings, token, usage)
    tool_round_trip(stack, settings, token, usage, tools_build)
    image_question(stack, settings, token, usage)
    embed_corpus(stack, settings, token, usage)


def stream_reply(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable) -> StreamReport:
    print(f"\n== Cortex streaming: {CHAT_MODEL} streams its reply to {STREAMED_EXCHANGE.question!r} as server-sent "
          f"events; each chunk is printed as it arrives (the stand-in paces tokens {STREAM_PACE_S * 1000:.0f} ms "
          "apart, like a real model)")
    model = load_component("cortex-chat", cortex_config(token, stack, settings, CHAT_MODEL))
    stack.set_cortex_pace(STREAM_PACE_S)
    try:
        report = _stream(model, {"messages": chat_messages(STREAMED_EXCHANGE.question)},
                         lambda chunk: print(chunk, end="", flush=True), usage)
    finally:
        stack.set_cortex_pace(0)
    print(f"\n  {len(report.chunks)} chunks, in order; first after {report.first_chunk_s:.2f} s, last after "
          f"{report.total_s:.2f} s")
    print(f"  footer: {json.dumps(report.footer)}")
    return report


def _stream(model: Any, query: dict[str, Any], show: Callable[[str], None], usage: UsageTable) -> StreamReport:
    trace = SpanBuilder("demo")
    chunks: list[str] = []
    footer: dict[str, Any] = {}
    first_chunk_s = 0.0
    print("  ", end="")
    started = time.perf_counter()
    for item in model.process_stream(query, {"temperature": 0}, trace):
        if "footer" in item:
            footer = item["footer"]
        elif item["chunk"].get("text"):
            first_chunk_s = first_chunk_s or time.perf_counter() - started
            chunks.append(item["chunk"]["text"])
            show(item["chunk"]["text"])
    total_s = time.perf_counter() - started
    usage.record(f"cortex: streamed ({CHAT_MODEL})", footer, trace, billed="tokens")
    return StreamReport(chunks, first_chunk_s, total_s, footer)


def tool_round_trip(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable,
                    tools_build: threading.Thread | None) -> None:
    question = f"What is the weather in {WEATHER_CITY}?"
    print(f"\n== Cortex tool call: {TOOL_MODEL} is offered the tool get_weather(city) and asked {question!r}")
    if tools_build is not None and tools_build.is_alive():
        print("  (waiting for the tool-calling model's one-time training to finish)", flush=True)
        tools_build.join()
    model = load_component("cortex-chat", cortex_config(token, stack, settings, TOOL_MODEL))
    tools = {"tools": [WEATHER_TOOL], "toolChoice": {"type": "auto"}, "temperature": 0}
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    trace = SpanBuilder("demo")
    asked = model.process({"messages": messages}, tools, trace)
    usage.record(f"cortex: tool call ({TOOL_MODEL})", asked, trace, billed="tokens")
    calls = asked.get("toolCalls") or []
    for call in calls:
        print(f"  {'model asks for':<32} → {call['function']['name']}({call['function']['arguments']}) "
              f"[call id {call['id']}; finish reason {asked.get('finishReason')}]")
    if not calls:
        print(f"  {'model answered without a tool':<32} → {asked['text']!r}")
        return
    outputs = []
    for call in calls:
        city = json.loads(call["function"]["arguments"]).get("city", "")
        result = WEATHER_REPORTS.get(city, f"no weather report for {city!r}")
        print(f"  {'demo runs the tool locally':<32} → {result!r}")
        outputs.append({"callId": call["id"], "output": result})
    messages += [{"role": "assistant", "toolCalls": calls}, {"role": "tool", "toolOutputs": outputs}]
    trace = SpanBuilder("demo")
    answered = model.process({"messages": messages}, tools, trace)
    usage.record(f"cortex: tool result ({TOOL_MODEL})", answered, trace, billed="tokens")
    print(f"  {'model, given the tool result':<32} → {answered['text']!r}")


def image_question(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable) -> None:
    """One image query: a 4×3 PNG made here, sent inline; the stand-in's reply opens with what it received."""
    png = tiny_png(4, 3, (30, 144, 255))
    print(f"\n== Cortex image: a {len(png)}-byte 4x3 PNG made in code, sent inline to {TOOL_MODEL} ('Model accepts "
          "images': Yes, as the tiny model is not on the shipped list); the stand-in describes what it received")
    config = {**cortex_config(token, stack, settings, TOOL_MODEL), "accepts_images": "yes"}
    model = load_component("cortex-chat", config)
    query = {"messages": [{"role": "user", "parts": [
        {"type": "TEXT", "text": "What is in this picture?"},
        {"type": "IMAGE_INLINE", "inlineImage": base64.b64encode(png).decode(), "imageMimeType": "image/png"}]}]}
    trace = SpanBuilder("demo")
    answer = model.process(query, {"temperature": 0, "maxOutputTokens": 24}, trace)
    usage.record(f"cortex: image ({TOOL_MODEL})", answer, trace, billed="tokens")
    seen = answer["text"].splitlines()[0] if answer["text"] else ""
    intact = f"sha256 {hashlib.sha256(png).hexdigest()[:12]}" in seen
    print(f"  {'the endpoint received':<32} → {seen} ({'intact' if intact else 'NOT the image sent'})")


def embed_corpus(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable) -> None:
    corpus = json.loads(resource_path("demo", "corpus.json").read_text(encoding="utf-8"))
    documents, query = corpus["documents"], corpus["query"]
    print(f"\n== Cortex embeddings: {EMBED_MODEL} (MiniLM here) embeds the same {len(documents)} documents and "
          "query through the cortex-embedding component")
    embedder = load_component("cortex-embedding", cortex_config(token, stack, settings, EMBED_MODEL))
    trace = SpanBuilder("demo")
    answer = embedder.process({"queries": [{"text": text} for text in [*documents, query]]}, {}, trace)
    usage.record(f"cortex: embed ({EMBED_MODEL})", answer, trace, rows=len(documents) + 1, billed="tokens")
    vectors = np.array([row["embedding"] for row in answer["responses"]])
    scores = vectors[:-1] @ vectors[-1]
    best = int(np.argmax(scores))
    print(f"  {len(vectors)} vectors of {vectors.shape[1]} dimensions; nearest document ({scores[best]:.3f}): "
          f"{documents[best]}")
