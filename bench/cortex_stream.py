"""Cortex streaming: time to first chunk and per-chunk overhead of the ``cortex-chat`` component's ``process_stream``
against a raw SSE client, on the stand-in's Cortex chat completions endpoint.

The raw client is what a hand-written integration does: ``requests`` with ``stream=True`` on a kept-alive session,
reading ``data:`` lines as they arrive and parsing each JSON chunk for its text delta. The component does what DSS
gets from it on top: auth from the preset's token cache, the endpoint's limiter slot, SSE parsing, tool-call
assembly, usage and cost in a footer, and its trace span. Both send the same body (the same prompt) to the same
stand-in; runs alternate which client goes first, so load drift and model-time jitter hit both alike.

Per run and client: time to first text chunk (from the call to the chunk in hand), the wall time per further chunk
(last chunk minus first, over chunks − 1), and this thread's CPU time (``time.thread_time``) to the first chunk and
per further chunk. The stand-in is another process, so the CPU figures are the client's own work, free of the
model's timing; the wall figures include the model's pace.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from dataikuapi.dss.llm_tracing import SpanBuilder

from benchkit import (
    Goal,
    facts_section,
    goals_table,
    machine_facts,
    markdown_table,
    percentile,
    standin,
    write_result,
)
from spcs_llm.cortex.endpoints import CHAT_COMPLETIONS_ROUTE, chat_completions_body
from spcs_llm.cortex.tool_calls import ToolRequest
from spcs_llm.spcs.dss_adapter import params_from_settings
from spcs_standin.cortex_engines import CHAT_MODEL
from spcs_standin.harness import load_component
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages

STREAMED = CANNED_EXCHANGES[4]  # the longest canned reply: ~20 chunks
SETTINGS = {"temperature": 0, "maxOutputTokens": 64}
CLIENTS = ("raw", "plugin")


@dataclass(frozen=True)
class StreamTiming:
    chunks: int
    text: str
    first_chunk_ms: float
    ms_per_chunk: float  # wall time from the first chunk to the last, per further chunk
    cpu_first_chunk_ms: float
    cpu_us_per_chunk: float  # this thread's CPU from the first chunk to the end of the stream, per further chunk


class Clock:
    """Wall and thread-CPU time from the call, taken at the first chunk and at the end."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.thread_time()
        self.first: tuple[float, float] | None = None
        self.last_wall = 0.0
        self.pieces: list[str] = []

    def chunk(self, text: str) -> None:
        now = time.perf_counter(), time.thread_time()
        self.first = self.first or now
        self.last_wall = now[0]
        self.pieces.append(text)

    def timing(self) -> StreamTiming:
        if self.first is None:
            raise RuntimeError("the stream carried no text")
        end_cpu = time.thread_time()
        further = max(len(self.pieces) - 1, 1)
        return StreamTiming(
            chunks=len(self.pieces), text="".join(self.pieces),
            first_chunk_ms=(self.first[0] - self.wall0) * 1000,
            ms_per_chunk=(self.last_wall - self.first[0]) * 1000 / further,
            cpu_first_chunk_ms=(self.first[1] - self.cpu0) * 1000,
            cpu_us_per_chunk=(end_cpu - self.first[1]) * 1e6 / further,
        )


def raw_deltas(session: requests.Session, url: str, body: dict[str, Any], headers: dict[str, str]) -> Iterator[str]:
    """A hand-written SSE client: text deltas from the ``data:`` lines as they arrive, until ``[DONE]``.

    ``chunk_size=None`` hands over each chunk of the body as it arrives; ``iter_lines``' default (512 bytes) would
    wait for 512 bytes before the first line.
    """
    with session.post(url, json=body, headers=headers, stream=True, timeout=60) as answer:
        answer.raise_for_status()
        for line in answer.iter_lines(chunk_size=None):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            for choice in json.loads(data).get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    yield content


def measure(runs: int, warmup: int, stream_raw: Callable[[], Iterator[str]],
            stream_plugin: Callable[[], Iterator[dict[str, Any]]]) -> dict[str, list[StreamTiming]]:
    def raw() -> StreamTiming:
        clock = Clock()
        for text in stream_raw():
            clock.chunk(text)
        return clock.timing()

    def plugin() -> StreamTiming:
        clock = Clock()
        for item in stream_plugin():
            if item.get("chunk", {}).get("text"):
                clock.chunk(item["chunk"]["text"])
        return clock.timing()

    timings: dict[str, list[StreamTiming]] = {name: [] for name in CLIENTS}
    for index in range(warmup + runs):
        order = (("raw", raw), ("plugin", plugin)) if index % 2 == 0 else (("plugin", plugin), ("raw", raw))
        for name, action in order:
            timing = action()
            if timing.text != STREAMED.answer:
                raise RuntimeError(f"{name} streamed {timing.text!r}, not the canned reply")
            if index >= warmup:
                timings[name].append(timing)
    return timings


def summarise(timings: dict[str, list[StreamTiming]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for field in ("first_chunk_ms", "ms_per_chunk", "cpu_first_chunk_ms", "cpu_us_per_chunk"):
        per_client = {name: [getattr(t, field) for t in timings[name]] for name in CLIENTS}
        paired = [p - r for p, r in zip(per_client["plugin"], per_client["raw"])]
        summary[field] = {name: {"p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}
                          for name, values in (*per_client.items(), ("paired difference", paired))}
    summary["chunks"] = {name: sorted({t.chunks for t in timings[name]}) for name in CLIENTS}
    return summary


def run(args: argparse.Namespace) -> dict[str, Any]:
    facts = machine_facts()
    messages = chat_messages(STREAMED.question)
    body = chat_completions_body(CHAT_MODEL, messages, params_from_settings(SETTINGS), ToolRequest(), stream=True)
    with standin(preload=(), workers=1, queue_size=2, model_threads=1) as stack:
        stack.reset_cortex()
        pat = stack.issue_pat()
        plugin = load_component("cortex-chat", {
            "auth_type": "service", "model": CHAT_MODEL,
            "service_preset": {"service_auth": "pat", "pat": pat, "account_url": stack.cortex_url}})
        session = requests.Session()
        url = f"{stack.cortex_url}/{CHAT_COMPLETIONS_ROUTE}"
        headers = {"Authorization": f"Bearer {pat}",
                   "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN"}
        print(f"  {args.runs} raw/plugin pairs of streams of {STREAMED.question!r}…", flush=True)
        timings = measure(args.runs, args.warmup, lambda: raw_deltas(session, url, body, headers),
                          lambda: plugin.process_stream({"messages": messages}, SETTINGS, SpanBuilder("bench")))
        stats = stack.cortex_stats()
    return {"facts": facts, "summary": summarise(timings), "runs": args.runs, "warmup": args.warmup,
            "body_bytes": len(json.dumps(body)), "reply_chars": len(STREAMED.answer), "standin": stats}


def report(result: dict[str, Any]) -> str:
    summary = result["summary"]
    first, per_chunk = summary["first_chunk_ms"], summary["ms_per_chunk"]
    cpu_first, cpu_per_chunk = summary["cpu_first_chunk_ms"], summary["cpu_us_per_chunk"]
    overhead_first = first["plugin"]["p50"] - first["raw"]["p50"]
    goals = [Goal("time to first chunk, plugin − raw, p50", overhead_first, 2.0, unit=" ms", at_most=True)]

    def rows(table: dict[str, Any], digits: int) -> list[list[str]]:
        return [[name, f"{table[name]['p50']:.{digits}f}", f"{table[name]['p90']:.{digits}f}"]
                for name in (*CLIENTS, "paired difference")]

    chunks = summary["chunks"]
    return f"""# Cortex streaming: time to first chunk and per-chunk overhead

Produced by `bench/cortex_stream.py` (`make bench`); all numbers from one run.

## Machine

{facts_section(result['facts'])}

## Setup

- Stand-in Cortex endpoint `/{CHAT_COMPLETIONS_ROUTE}` on the local account host, model `{CHAT_MODEL}` (the tiny
  chat model, one torch thread, generating token by token with no added pace), PAT auth.
- Both clients send the same {result['body_bytes']}-byte body (prompt {STREAMED.question!r}, temperature 0,
  `stream_options.include_usage`) and receive the same {result['reply_chars']}-character reply in
  {', '.join(map(str, chunks['raw']))} (raw) / {', '.join(map(str, chunks['plugin']))} (plugin) text chunks.
- Raw: `requests.Session().post(..., stream=True)`, `iter_lines(chunk_size=None)`, `json.loads` of each `data:`
  line. Plugin: the `cortex-chat` component's `process_stream`, as DSS calls it (footer with usage and cost,
  trace span).
- {result['runs']} pairs after {result['warmup']} warm-up pairs, alternating which client goes first.

## Time to first chunk (wall, ms)

{markdown_table(["ms", "p50", "p90"], rows(first, 2))}

## Per further chunk (wall, ms; includes the model's time per token)

{markdown_table(["ms per chunk", "p50", "p90"], rows(per_chunk, 3))}

## Client CPU (this thread only; the stand-in is another process)

{markdown_table(["CPU ms to first chunk", "p50", "p90"], rows(cpu_first, 2))}

{markdown_table(["CPU µs per further chunk", "p50", "p90"], rows(cpu_per_chunk, 0))}

## Goal

{goals_table(goals)}

The goal is the non-streamed chat client's (`chat.md`): the component may add at most 2 ms before the first
token. Per chunk, the component's extra CPU (paired difference above) is what it spends on each delta beyond the
raw client's line split and JSON parse.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="raw/plugin pairs measured")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print only; keep bench/results as they are")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(args)
    print(json.dumps(result["summary"], indent=2))
    if not args.no_write:
        print(f"wrote {write_result('cortex_stream', report(result), result)}")
    print(f"Cortex streaming benchmark took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
