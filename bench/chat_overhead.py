"""Chat client overhead and parallel scaling of the plugin's ``spcs-chat`` component.

Overhead: the component's ``process`` against a raw ``requests`` POST of the same body to the same endpoint.
The endpoint is ``canned_server.py`` replaying a reply recorded from the stand-in's chat service: a model's
time (and its variance, several ms even for the tiny model) would swamp a 2 ms difference, while a constant
answer leaves only what the two clients do differently. Calls alternate raw/plugin, so load drift hits both.

Scaling: throughput with max parallelism 1, 2, 4 against the stand-in's chat service with 4 workers. The
machine has 2 cores, so the service's time per request is made latency-bound (the stand-in's ``latency_ms``,
held inside the service's capacity slot like a slower model): the speed-up then measures the client's
parallelism rather than the CPU. DSS's side is 8 threads calling ``process``; the component's limit decides how
many requests are in flight.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from dataikuapi.dss.llm_tracing import SpanBuilder

from benchkit import (
    Goal,
    facts_section,
    goals_table,
    machine_facts,
    markdown_table,
    pat_config,
    percentile,
    snowflake_token_header,
    standin,
    timed,
    write_result,
)
from spcs_llm.spcs.dss_adapter import params_from_settings
from spcs_llm.spcs.protocol import envelope, openai_chat_row
from spcs_standin.harness import load_component
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages

CALLERS = 8
SETTINGS = {"temperature": 0, "maxOutputTokens": 4}


def request_body(messages: list[dict[str, str]]) -> bytes:
    """The bytes the component sends for this query: an OpenAI-chat row in the flat envelope, as JSON."""
    return json.dumps(envelope([openai_chat_row(messages, params_from_settings(SETTINGS))])).encode("utf-8")


@contextmanager
def canned_server(answer: bytes) -> Iterator[str]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as file:
        file.write(answer)
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("canned_server.py")), file.name],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = json.loads(process.stdout.readline())["port"]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        Path(file.name).unlink(missing_ok=True)


def measure_overhead(endpoint: str, pat: str, query: dict[str, Any], body: bytes, pairs: int,
                     warmup: int) -> dict[str, Any]:
    plugin = load_component("spcs-chat", pat_config(endpoint, pat))
    session = requests.Session()
    headers = snowflake_token_header(pat)
    url = f"{endpoint}/__call__"

    def raw() -> None:
        answer = session.post(url, data=body, headers=headers, timeout=30)
        answer.raise_for_status()

    def through_plugin() -> None:
        plugin.process(query, SETTINGS, trace)

    raw_ms: list[float] = []
    plugin_ms: list[float] = []
    for index in range(warmup + pairs):
        trace = SpanBuilder("bench")  # DSS builds the trace; only process() is timed
        order = (raw, through_plugin) if index % 2 == 0 else (through_plugin, raw)
        times = {action: timed(action) * 1000 for action in order}
        if index >= warmup:
            raw_ms.append(times[raw])
            plugin_ms.append(times[through_plugin])
    differences = [p - r for p, r in zip(plugin_ms, raw_ms)]
    summary = {name: {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
               for name, values in (("raw", raw_ms), ("plugin", plugin_ms), ("paired difference", differences))}
    summary["overhead p50"] = summary["plugin"]["p50"] - summary["raw"]["p50"]
    summary["overhead p95"] = summary["plugin"]["p95"] - summary["raw"]["p95"]
    summary["pairs"] = pairs
    return summary


def measure_scaling(stack: Any, pat: str, query: dict[str, Any], parallelisms: tuple[int, ...], per_run: int,
                    latency_ms: float) -> list[dict[str, Any]]:
    endpoint = stack.service_url("chat")
    stack.set_faults("chat", latency_ms=latency_ms)
    runs = []
    for limit in parallelisms:
        plugin = load_component("spcs-chat", pat_config(endpoint, pat, max_parallelism=limit))
        plugin.process(query, SETTINGS, None)
        stack.stats("chat", reset=True)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CALLERS) as callers:
            list(callers.map(lambda _, plugin=plugin: plugin.process(query, SETTINGS, None), range(per_run)))
        seconds = time.perf_counter() - started
        stats = stack.stats("chat")
        runs.append({"max_parallelism": limit, "requests": per_run, "seconds": seconds,
                     "per_s": per_run / seconds, "ms_per_request": 1000 * seconds * limit / per_run,
                     "max_in_flight": stats["max_in_flight"],
                     "sent_429": stats["sent_429"]})
        print(f"  parallelism {limit}: {per_run / seconds:.2f} requests/s", flush=True)
    stack.reset_faults()
    for run in runs:
        run["speed_up"] = run["per_s"] / runs[0]["per_s"]
    return runs


def run(args: argparse.Namespace) -> dict[str, Any]:
    facts = machine_facts()
    query = {"messages": chat_messages(CANNED_EXCHANGES[0].question)}
    body = request_body(query["messages"])
    with standin(preload=("chat",), workers=1, queue_size=4, model_threads=1,
                 service_workers={"chat": args.workers}) as stack:
        pat = stack.issue_pat()
        recorded = requests.post(f"{stack.service_url('chat')}/__call__", data=body,
                                 headers=snowflake_token_header(pat), timeout=60)
        recorded.raise_for_status()
        print(f"  overhead: {args.pairs} raw/plugin pairs against the canned endpoint…", flush=True)
        with canned_server(recorded.content) as endpoint:
            overhead = measure_overhead(endpoint, pat, query, body, args.pairs, args.warmup)
        print(f"  scaling: {args.per_run} requests per run, {args.latency_ms:g} ms service time…", flush=True)
        scaling = measure_scaling(stack, pat, query, tuple(args.parallelism), args.per_run, args.latency_ms)
    return {"facts": facts, "overhead": overhead, "scaling": scaling, "workers": args.workers,
            "latency_ms": args.latency_ms, "callers": CALLERS, "answer_bytes": len(recorded.content),
            "body_bytes": len(body)}


def report(result: dict[str, Any]) -> str:
    overhead, scaling = result["overhead"], result["scaling"]
    goals = [Goal("chat client overhead, p50", overhead["overhead p50"], 2.0, unit=" ms", at_most=True)]
    goals += [Goal(f"throughput at parallelism {run['max_parallelism']} vs 1", run["speed_up"],
                   0.85 * run["max_parallelism"]) for run in scaling[1:]]
    latency_rows = [[name, f"{overhead[name]['p50']:.2f}", f"{overhead[name]['p95']:.2f}"]
                    for name in ("raw", "plugin", "paired difference")]
    latency_rows.append(["overhead = plugin − raw", f"{overhead['overhead p50']:.2f}",
                         f"{overhead['overhead p95']:.2f}"])
    scaling_rows = [[run["max_parallelism"], f"{run['per_s']:.2f}", f"{run['speed_up']:.2f}×",
                     f"{0.85 * run['max_parallelism']:.2f}×", f"{run['ms_per_request']:.0f}", run["max_in_flight"],
                     run["sent_429"]] for run in scaling]
    return f"""# Chat client overhead and parallel scaling

Produced by `bench/chat_overhead.py` (`make bench`); all numbers from one run.

## Machine

{facts_section(result['facts'])}

## Overhead of the component over a raw POST

- Both clients send the same {result['body_bytes']}-byte body (one OpenAI-chat row) with the same
  `Snowflake Token` header to the same endpoint; the raw client is `requests.Session().post` on a kept-alive
  connection, reading the answer but not parsing it. The component parses, accounts tokens and cost, and
  records its trace span — everything DSS gets from it.
- Endpoint: `bench/canned_server.py`, uvicorn replaying a {result['answer_bytes']}-byte reply recorded from the
  stand-in's chat service. A real model's time and jitter would swamp a difference of a few ms; a constant
  answer leaves only what the clients do differently.
- {overhead['pairs']} pairs after warm-up, alternating which client goes first.

{markdown_table(["ms per call", "p50", "p95"], latency_rows)}

## Throughput against max parallelism

- Stand-in chat service with {result['workers']} workers (the tiny model). Each request also holds its
  service slot for {result['latency_ms']:g} ms (`latency_ms`): with 2 cores, CPU-bound model time would cap
  any client at 2 requests in parallel, so the service is made latency-bound and the speed-up measures the
  client's parallelism.
- DSS's side: {result['callers']} threads calling `process`; the component's max parallelism bounds the
  requests in flight (the stand-in's own counter of requests in flight is shown).

{markdown_table(["max parallelism", "requests/s", "speed-up", "goal", "ms per request",
                 "max in flight at the service", "429s"], scaling_rows)}

## Goals

{goals_table(goals)}

{_explanation(scaling, goals)}
"""


def _explanation(scaling: list[dict[str, Any]], goals: list[Goal]) -> str:
    """Why a goal failed, from the numbers: the client's part is its overhead, the rest is the service's time."""
    lines = []
    if not goals[0].met:
        lines.append("**Overhead goal not met.** See the load averages above: the overhead is CPU work in this "
                     "process, and other processes compete for the two cores.")
    if any(not goal.met for goal in goals[1:]):
        first, last = scaling[0], scaling[-1]
        lines.append(
            f"**Scaling goal not met.** The client kept {last['max_in_flight']} requests in flight, but each "
            f"took {last['ms_per_request']:.0f} ms instead of {first['ms_per_request']:.0f} ms: the service's "
            f"model calls, {last['max_parallelism']} at a time, share the machine's two cores (and whatever else "
            "runs on them), so the service slows down, not the client."
        )
    return "\n\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4, help="the stand-in chat service's workers")
    parser.add_argument("--latency-ms", type=float, default=300.0, help="service time held per request")
    parser.add_argument("--per-run", type=int, default=48, help="requests per parallelism setting")
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--no-write", action="store_true", help="print only; keep bench/results as they are")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(args)
    print(json.dumps({"overhead": result["overhead"], "scaling": result["scaling"]}, indent=2))
    if not args.no_write:
        print(f"wrote {write_result('chat', report(result), result)}")
    print(f"chat benchmark took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
