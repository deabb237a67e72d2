"""Chat fleet: 4·W·I DSS threads against a chat service of I instances × W workers, through the ``spcs-chat`` component.

The service is ``storm_server.py`` as a chat service: each instance has W workers and a queue of W, a request
holds a worker for a fixed service time (asleep, so the two cores stay with the client) after a 50 ms round trip
that holds nothing, and the ingress spreads requests over the instances at random, blind to their load; a full
instance answers 429. The fleet's capacity is W·I requests per service time.

Measured in one run, in rounds, so that every ratio compares cases that saw the same machine load:

- serial: one thread calling the component back to back (and a raw POST paired with each call);
- per fleet (W, I): 4·W·I threads calling the component, with 'Max parallelism' as ``deploy`` sets it for the
  fleet (a ceiling, 32 × instances, below which the limiter finds the bound) and at a tuned value; throughput
  against W·I × serial, p50/p95 latency of a call as DSS sees it (including its wait for a slot), 429s at the
  service, the limiter's bound and requests in flight (sampled every 10 ms);
- the connector's overhead per call: component latency − raw POST latency, paired, against the same server
  with no service time and no round trip (so the difference is not lost in timer jitter), and at fleet timings.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import requests
from dataikuapi.dss.llm_tracing import SpanBuilder

from benchkit import (
    Goal,
    LimiterSampler,
    facts_section,
    goals_table,
    machine_facts,
    markdown_table,
    pat_config,
    percentile,
    snowflake_token_header,
    timed,
    write_result,
)
from spcs_llm.core.endpoint_state import reset_endpoint_registry
from spcs_llm.deploy.services.connection import max_parallelism_ceiling
from spcs_llm.spcs.dss_adapter import params_from_settings
from spcs_llm.spcs.protocol import dump_body, envelope, openai_chat_row
from spcs_standin.harness import load_component
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages
from storm_server import configure, fixed_capacity_service, stats

PAT = "bench-pat"
SETTINGS = {"temperature": 0, "maxOutputTokens": 64}
# One row's output as an OpenAI-compatible chat service returns it (a short answer with usage), ~400 bytes.
CHAT_REPLY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1764806400, "model": "bench-chat",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant",
        "content": "Snowpark Container Services runs containers inside Snowflake, next to the data, and "
                   "scales each service between its minimum and maximum number of instances."}}],
    "usage": {"prompt_tokens": 41, "completion_tokens": 29, "total_tokens": 70}})
GOAL_SCALING = 0.9
GOAL_OVERHEAD_MS = 1.0


def deploy_parallelism(instances: int) -> int:
    """What ``deploy`` prints for a chat fleet (``deploy/services/connection.py``): a ceiling, 32 × max_instances;
    the limiter finds the bound below it (issue 22)."""
    return max_parallelism_ceiling(instances)


def tuned_parallelism(workers: int, instances: int, service_ms: float, network_ms: float) -> int:
    """Just enough requests in flight to keep W·I workers busy through the round trip. A development sweep
    (W=1 I=2: 2, 3, 4; W=2 I=2: 4, 5, 6, 8) found more only meeting 429s from the blind spreading, each paid
    with a jittered back-off of up to a second, for no gain."""
    return math.ceil(workers * instances * (service_ms + network_ms) / service_ms)


def component(url: str, parallelism: int) -> Any:
    reset_endpoint_registry()  # a fresh limiter at this bound: the registry keeps one per endpoint URL
    return load_component("spcs-chat", pat_config(url, PAT, max_parallelism=parallelism))


def paired_calls(url: str, query: dict[str, Any], body: bytes, pairs: int, warmup: int) -> dict[str, Any]:
    """Raw POST and component call in alternating order; the component's latencies give the serial throughput."""
    plugin = component(url, 1)
    session = requests.Session()
    headers = snowflake_token_header(PAT)

    def raw() -> None:
        session.post(f"{url}/__call__", data=body, headers=headers, timeout=30).raise_for_status()

    raw_ms: list[float] = []
    plugin_ms: list[float] = []
    for index in range(warmup + pairs):
        trace = SpanBuilder("bench")  # DSS builds the trace; only process() is timed
        through_plugin = partial(plugin.process, query, SETTINGS, trace)
        order = (raw, through_plugin) if index % 2 == 0 else (through_plugin, raw)
        times = {action: timed(action) * 1000 for action in order}
        if index >= warmup:
            raw_ms.append(times[raw])
            plugin_ms.append(times[through_plugin])
    session.close()
    differences = [p - r for p, r in zip(plugin_ms, raw_ms)]
    return {"pairs": pairs, "raw_ms": raw_ms, "plugin_ms": plugin_ms,
            "raw p50": percentile(raw_ms, 0.5), "plugin p50": percentile(plugin_ms, 0.5),
            "overhead p50": percentile(differences, 0.5), "overhead p95": percentile(differences, 0.95),
            "serial per_s": 1000 * len(plugin_ms) / sum(plugin_ms)}


def fleet_case(url: str, query: dict[str, Any], workers: int, instances: int, parallelism: int,
               calls: int) -> dict[str, Any]:
    plugin = component(url, parallelism)
    plugin.process(query, SETTINGS, None)  # connection warm-up, outside the timing
    configure(url)  # reset the service's counts, keep its settings
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def call(_: int) -> None:
        try:
            seconds = timed(lambda: plugin.process(query, SETTINGS, None))
        except Exception as error:  # noqa: BLE001 (a failed call is a result of the bench, not its end)
            with lock:
                failures.append(type(error).__name__)
            return
        with lock:
            latencies.append(1000 * seconds)

    started = time.perf_counter()
    with LimiterSampler(url) as sampler, ThreadPoolExecutor(max_workers=4 * workers * instances) as callers:
        list(callers.map(call, range(calls)))
    seconds = time.perf_counter() - started
    served = stats(url)
    return {"workers": workers, "instances": instances, "max_parallelism": parallelism, "calls": calls,
            "threads": 4 * workers * instances, "seconds": seconds, "latency_ms": latencies,
            "failures": failures, "sent_429": served["sent_429"], "max_admitted": served["max_admitted"],
            **sampler.summary()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    facts = machine_facts()
    query = {"messages": chat_messages(CANNED_EXCHANGES[0].question)}
    body = dump_body(envelope([openai_chat_row(query["messages"], params_from_settings(SETTINGS))]))
    fleets = [tuple(int(n) for n in text.split("x")) for text in args.fleets]
    timing = {"service_ms": args.service_ms, "network_ms": args.network_ms, "row_ms": 0.0}
    rounds: list[dict[str, Any]] = []
    with fixed_capacity_service() as url:
        configure(url, service_ms=0.0, network_ms=0.0, row_ms=0.0, workers=4, queue=4, instances=1,
                  chat_reply=CHAT_REPLY)
        print(f"  overhead: {args.pairs} raw/component pairs, no service time…", flush=True)
        overhead = paired_calls(url, query, body, args.pairs, args.warmup)
        for number in range(args.rounds):
            configure(url, workers=1, queue=1, instances=1, **timing)
            serial = paired_calls(url, query, body, args.serial_calls, 1)
            print(f"  round {number + 1}: serial {serial['serial per_s']:.2f} calls/s", flush=True)
            cases = []
            for workers, instances in fleets:
                configure(url, workers=workers, queue=workers, instances=instances, **timing)
                for kind, parallelism in (("deploy", deploy_parallelism(instances)),
                                          ("tuned", tuned_parallelism(workers, instances, args.service_ms,
                                                                      args.network_ms))):
                    calls = round(args.seconds_per_case * workers * instances * 1000 / args.service_ms)
                    case = {"setting": kind, **fleet_case(url, query, workers, instances, parallelism, calls)}
                    print(f"    W={workers} I={instances} {kind} (max parallelism {parallelism}): "
                          f"{case['calls'] / case['seconds']:.2f} calls/s, {case['sent_429']} 429s", flush=True)
                    cases.append(case)
            rounds.append({"serial": serial, "cases": cases})
    return {"facts": facts, "overhead": overhead, "rounds": rounds, "timing": timing,
            "body_bytes": len(body), "reply_bytes": len(CHAT_REPLY)}


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (fleet, setting): pooled over rounds, each round's throughput against that round's serial."""
    rows: dict[tuple[int, int, str], dict[str, Any]] = {}
    for one_round in result["rounds"]:
        serial = one_round["serial"]["serial per_s"]
        for case in one_round["cases"]:
            key = (case["workers"], case["instances"], case["setting"])
            row = rows.setdefault(key, {"workers": key[0], "instances": key[1], "setting": key[2],
                                        "max_parallelism": case["max_parallelism"], "threads": case["threads"],
                                        "per_s": [], "ratio": [], "latency_ms": [], "sent_429": 0, "calls": 0,
                                        "failures": 0, "max_admitted": 0, "bounds": [], "in_flight": []})
            per_s = case["calls"] / case["seconds"]
            row["per_s"].append(per_s)
            row["ratio"].append(per_s / (case["workers"] * case["instances"] * serial))
            row["latency_ms"] += case["latency_ms"]
            row["sent_429"] += case["sent_429"]
            row["calls"] += case["calls"]
            row["failures"] += len(case["failures"])
            row["max_admitted"] = max(row["max_admitted"], case["max_admitted"])
            row["bounds"].append(case.get("bound_mean", 0.0))
            row["in_flight"].append(case.get("in_flight_mean", 0.0))
    for row in rows.values():
        row["mean per_s"] = sum(row["per_s"]) / len(row["per_s"])
        row["mean ratio"] = sum(row["ratio"]) / len(row["ratio"])
        row["p50 ms"] = percentile(row["latency_ms"], 0.5)
        row["p95 ms"] = percentile(row["latency_ms"], 0.95)
        row["bound"] = sum(row["bounds"]) / len(row["bounds"])
        row["mean in flight"] = sum(row["in_flight"]) / len(row["in_flight"])
    return list(rows.values())


def report(result: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    overhead, timing = result["overhead"], result["timing"]
    serials = [r["serial"] for r in result["rounds"]]
    fleet_overhead = [s["overhead p50"] for s in serials]
    goals = [Goal(f"W={r['workers']} I={r['instances']}, {r['setting']} (max parallelism {r['max_parallelism']}): "
                  "throughput vs W·I × serial", r["mean ratio"], GOAL_SCALING) for r in rows]
    # Issue 22: the goal is at the settings deploy prints; the tuned rows (a ceiling at the hand-computed value) are a
    # comparison, judged in the reading but not in the Goals table.
    goals.append(Goal("connector overhead per call, p50", overhead["overhead p50"], GOAL_OVERHEAD_MS,
                      unit=" ms", at_most=True))
    fleet_rows = [[f"{r['workers']} × {r['instances']}", r["setting"], r["max_parallelism"], r["threads"],
                   f"{r['mean per_s']:.2f}", f"{r['workers'] * r['instances'] * 1000 / timing['service_ms']:.2f}",
                   " / ".join(f"{x:.2f}" for x in r["ratio"]), f"{r['mean ratio']:.2f}×",
                   f"{r['bound']:.1f} / {r['mean in flight']:.1f}",
                   f"{r['p50 ms']:.0f}", f"{r['p95 ms']:.0f}", r["sent_429"], r["max_admitted"],
                   r["failures"]] for r in rows]
    serial_rows = [[number + 1, f"{s['serial per_s']:.2f}", f"{s['raw p50']:.1f}", f"{s['plugin p50']:.1f}",
                    f"{s['overhead p50']:.2f}", f"{s['overhead p95']:.2f}"] for number, s in enumerate(serials)]
    return f"""# Chat fleet: throughput and latency against I instances × W workers

Produced by `bench/chat_fleet.py` (`make bench`); all numbers from one run.

## Machine

{facts_section(result['facts'])}

## Set-up

- Service: `bench/storm_server.py` as a chat service (every row answered with the same {result['reply_bytes']}-byte
  OpenAI-style completion). I instances, each with W workers and a queue of W; a request holds a worker for
  {timing['service_ms']:g} ms (asleep: a GPU's time, not this CPU's) after a {timing['network_ms']:g} ms round trip
  that holds nothing. The ingress sends each request to a random instance, blind to its load (the stricter
  reading; how SPCS balances is not documented), and a full instance answers 429. Capacity: W·I ×
  {1000 / timing['service_ms']:g} requests/s.
- DSS's side: 4·W·I threads calling the component's `process`, each call one {result['body_bytes']}-byte request.
  'Max parallelism' at what `deploy` sets for a chat fleet (32 × instances: a ceiling, the limiter finds the
  bound below it) and at a tuned ceiling (just enough in flight to keep every worker busy through the round trip:
  ⌈W·I × (service + round trip) / service⌉), where the limiter starts and may only go lower.
- Serial: one thread calling the component back to back against a 1-worker service with the same timing, measured
  in every round; each round's fleet throughput is divided by W·I × that round's serial throughput.
- Overhead: the component's `process` against a raw `requests` POST of the same body on a kept-alive connection,
  paired and alternating, {overhead['pairs']} pairs against the same server with no service time and no round trip.
  The paired difference at the fleet's timings (300 ms calls, where sleep jitter adds noise) is shown per round.

## Fleet throughput and latency

{markdown_table(["W × I", "max parallelism", "value", "DSS threads", "calls/s", "capacity calls/s",
                 "vs W·I × serial, per round", "mean", "limiter bound / in flight (means)", "p50 ms", "p95 ms",
                 "429s", "max admitted", "failed calls"],
                fleet_rows)}

## Serial calls and overhead

Overhead at no service time: raw p50 {overhead['raw p50']:.2f} ms, component p50 {overhead['plugin p50']:.2f} ms,
paired difference p50 **{overhead['overhead p50']:.2f} ms**, p95 {overhead['overhead p95']:.2f} ms.

{markdown_table(["round", "serial calls/s", "raw p50 ms", "component p50 ms", "paired overhead p50 ms",
                 "p95 ms"], serial_rows)}

## Goals

{goals_table([g for g in goals if ", tuned " not in g.name])}

{_explanation(result, rows, goals, fleet_overhead)}
"""


def _explanation(result: dict[str, Any], rows: list[dict[str, Any]], goals: list[Goal],
                 fleet_overhead: list[float]) -> str:
    """What limits each row, from the numbers: in flight vs capacity, the blind spreading, the round trip."""
    timing = result["timing"]
    cycle = timing["service_ms"] + timing["network_ms"]
    lines = [f"Serial calls take the round trip plus the service time ({cycle:g} ms) plus the connector's overhead, "
             f"while a worker is busy only {timing['service_ms']:g} ms of each: a saturated fleet can reach "
             f"{cycle / timing['service_ms']:.2f}× W·I × serial, if enough requests are in flight to keep "
             "every worker busy through the round trip and the spreading never leaves one idle.",
             "The blind spreading does leave workers idle: a request can land on an instance whose workers are "
             "all busy while another instance has one free, the more often the fewer workers per instance "
             "(with W = 1, two requests on one instance leave the other idle for a whole service time), and past "
             "what an instance admits it answers 429, which costs a jittered back-off of up to a second. "
             "Latencies are as DSS sees a call, including its wait for one of the component's slots: "
             "4·W·I threads share 'Max parallelism' requests in flight.", ""]
    for row, goal in zip(rows, goals):
        capacity = row["workers"] * row["instances"]
        needed = math.ceil(capacity * cycle / timing["service_ms"])
        what = (f"W={row['workers']} I={row['instances']} {row['setting']} (ceiling {row['max_parallelism']}): "
                f"the limiter's bound averaged {row['bound']:.1f}, {row['mean in flight']:.1f} requests in flight "
                f"for {capacity} workers")
        if row["mean in flight"] < needed:
            what += (f", fewer than the {needed} needed to cover the {timing['network_ms']:g} ms round trip, so "
                     "workers idle while requests travel")
        if row["sent_429"]:
            what += (f"; {row['sent_429']} 429s: the blind spreading sent more to one instance than it admits, each "
                     "retried after a jittered back-off while the limiter lowered its bound")
        verdict = "meets the goal" if goal.met else (
            f"**misses the goal by {GOAL_SCALING - goal.measured:.2f} (×{goal.measured / GOAL_SCALING:.2f} of it)**")
        lines.append(f"- {what}: {goal.measured:.2f}×, {verdict}.")
    worst = max(rows, key=lambda row: row["p95 ms"] / row["p50 ms"])
    fair_wait = worst["threads"] / max(worst["bound"], 1.0) * cycle
    lines += ["", f"**Tail latency.** The worst p95 is {worst['p95 ms']:.0f} ms (W={worst['workers']} "
              f"I={worst['instances']} {worst['setting']}) against a p50 of {worst['p50 ms']:.0f} ms. The "
              "component's slots are handed out first come, first served, so a call waits about "
              f"{worst['threads']} threads / {worst['bound']:.1f} slots × {cycle:g} ms ≈ {fair_wait:.0f} ms "
              "for its turn; what lies beyond is 429s retried after a jittered back-off (up to a second). Before the "
              "slots were first come, first served, a thread that had just released its slot took it again before "
              "the waiter it woke: p95 reached 5-7 s against a p50 of 0.3-0.5 s at the same throughput."]
    overhead_goal = goals[-1]
    if not overhead_goal.met:
        lines.append(f"**Overhead goal missed by {overhead_goal.measured - GOAL_OVERHEAD_MS:.2f} ms**: it is CPU work "
                     "in this process (building the body, parsing the reply, tokens, cost, trace), and other "
                     "processes compete for the two cores (see the load averages).")
    lines.append("\nPaired overhead at fleet timings per round (ms, p50): "
                 + " / ".join(f"{x:.2f}" for x in fleet_overhead) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", nargs="+", default=["1x2", "2x2"], help="WxI: workers per instance x instances")
    parser.add_argument("--service-ms", type=float, default=250.0, help="service time held per request")
    parser.add_argument("--network-ms", type=float, default=50.0, help="round trip before admission")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds-per-case", type=float, default=5.0, help="calls per case ≈ capacity × this")
    parser.add_argument("--serial-calls", type=int, default=10, help="serial component calls per round")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--no-write", action="store_true", help="print only; keep bench/results as they are")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(args)
    rows = summarise(result)
    raw = {**result, "summary": [{k: v for k, v in row.items() if k != "latency_ms"} for row in rows]}
    for one_round in raw["rounds"]:
        for case in one_round["cases"]:
            case.pop("latency_ms")
    for part in [raw["overhead"], *(r["serial"] for r in raw["rounds"])]:
        for samples in ("raw_ms", "plugin_ms"):
            part.pop(samples)
    print(json.dumps(raw["summary"], indent=2))
    if not args.no_write:
        print(f"wrote {write_result('chat_fleet', report(result, rows), raw)}")
    print(f"chat fleet benchmark took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
