"""429 storm: 32 DSS threads against an embedding service of fixed capacity, with and without the adaptive limiter.

The service (``storm_server.py``) has W workers and a queue of Q, a constant service time per row and a
network round trip before admission; it answers 429 as soon as W + Q requests are admitted. Three cases,
interleaved in rounds in one process so that they see the same machine load:

- ``adaptive``: the limiter as shipped (issue 22: latency and 429s find the bound, 'Max parallelism' 32 only a
  ceiling), with cross-call coalescing off, so that every call is its own request and the storm really comes;
- ``fixed``: the same, with the limiter's feedback switched off in this process and its bound pinned at 32 (the
  behaviour before issue 13), where every 429 is only retried after a jittered back-off;
- ``defaults``: every setting as DSS fills it in from llm.json ('Max parallelism' its default ceiling, coalescing
  at its default window): the calls share requests.

Reported: rows/s against the service's capacity, retries per row and per request, 429s, rows lost (must be 0).
Retries are the service's 429 count (every 429 is retried; no row was lost): a caller's own result counts the
attempts of every request it shared, so summing those over callers would count a shared retry several times.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any

from benchkit import (
    Goal,
    LimiterSampler,
    bench_main,
    machine_facts,
    markdown_table,
    pat_config,
    result_sections,
    shipped_default,
)
from spcs_llm.core.endpoint_state import endpoint_state, reset_endpoint_registry
from spcs_llm.core.limiter import EndpointLimiter
from spcs_standin.harness import load_component
from storm_server import configure, fixed_capacity_service, stats

CALLERS = 32
CASES = ("adaptive", "fixed", "defaults")


@contextmanager
def feedback_switched_off() -> Iterator[None]:
    """The 'fixed' case: answers no longer move the bound (bench-only; the shipped limiter always adapts)."""
    overloaded, success = EndpointLimiter.record_overloaded, EndpointLimiter.record_success
    EndpointLimiter.record_overloaded = lambda self, *args: None  # type: ignore[method-assign]
    EndpointLimiter.record_success = lambda self, *args: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        EndpointLimiter.record_overloaded = overloaded  # type: ignore[method-assign]
        EndpointLimiter.record_success = success  # type: ignore[method-assign]


def run_case(url: str, case: str, calls_per_caller: int, rows_per_call: int) -> dict[str, Any]:
    reset_endpoint_registry()  # a fresh limiter at the configured bound, for both cases alike
    settings: dict[str, Any] = (
        {"max_parallelism": shipped_default("spcs-embeddings", "max_parallelism")} if case == "defaults"
        else {"max_parallelism": CALLERS, "coalesce_window_ms": 0})
    component = load_component("spcs-embeddings", pat_config(url, "bench-pat", **settings))
    if case == "fixed":
        pinned = endpoint_state(url).limiter
        pinned.resize(CALLERS)
        pinned._estimate, pinned._limit = float(CALLERS), CALLERS  # bench-only: the fixed bound of before issue 13
    configure(url)  # reset the service's counts, keep its settings
    queries = [{"queries": [{"text": f"caller {caller} call {call} row {row}"} for row in range(rows_per_call)]}
               for caller in range(CALLERS) for call in range(calls_per_caller)]
    totals = {"rows": 0, "lost": 0}
    totals_lock = threading.Lock()

    def call(query: dict[str, Any]) -> None:
        answer = component.process(query, None, None)
        with totals_lock:
            totals["rows"] += len(answer["responses"])
            totals["lost"] += sum(1 for item in answer["responses"] if "errorMessage" in item)

    with feedback_switched_off() if case == "fixed" else nullcontext():
        started = time.perf_counter()
        with LimiterSampler(url) as sampler, ThreadPoolExecutor(max_workers=CALLERS) as pool:
            list(pool.map(call, queries))
        seconds = time.perf_counter() - started
    served = stats(url)
    limiter = endpoint_state(url).limiter
    return {"case": case, "seconds": seconds, "rows": totals["rows"], "lost": totals["lost"],
            "sent_429": served["sent_429"], "served_requests": served["requests"],
            "max_admitted": served["max_admitted"], "final_bound": limiter.limit, "ceiling": limiter.ceiling,
            **sampler.summary()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    facts = machine_facts()
    settings = {"workers": args.workers, "queue": args.queue, "service_ms": 0.0, "row_ms": args.row_ms,
                "network_ms": args.network_ms}
    capacity_rows = args.workers / (args.row_ms / 1000.0)
    runs: list[dict[str, Any]] = []
    with fixed_capacity_service() as url:
        configure(url, **settings)
        run_case(url, "adaptive", 2, args.rows_per_call)  # warm-up: connections, imports, dimension check
        for round_number in range(args.rounds):
            for case in CASES[round_number % len(CASES):] + CASES[:round_number % len(CASES)]:
                result = run_case(url, case, args.calls_per_caller, args.rows_per_call)
                result["round"] = round_number
                runs.append(result)
                print(f"  round {round_number} {case}: {result['rows'] / result['seconds']:.0f} rows/s, "
                      f"{result['sent_429']} × 429, lost {result['lost']}", flush=True)
    summary = {}
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        rows = sum(r["rows"] for r in mine)
        seconds = sum(r["seconds"] for r in mine)
        requests = sum(r["served_requests"] for r in mine)
        retries = sum(r["sent_429"] for r in mine)
        summary[case] = {"rows_per_s": rows / seconds, "of_capacity": rows / seconds / capacity_rows,
                         "retries_per_row": retries / rows, "retries_per_request": retries / requests,
                         "sent_429": sum(r["sent_429"] for r in mine), "lost": sum(r["lost"] for r in mine),
                         "rows": rows}
    return {"facts": facts, "settings": settings, "callers": CALLERS,
            "default_ceiling": shipped_default("spcs-embeddings", "max_parallelism"),
            "rows_per_call": args.rows_per_call,
            "calls_per_caller": args.calls_per_caller, "capacity_rows_per_s": capacity_rows, "runs": runs,
            "summary": summary}


def reading(raw: dict[str, Any]) -> str:
    """What limits each case, from this run's measurements (the mechanisms: bench/README.md, "429 storm")."""
    s, summary = raw["settings"], raw["summary"]
    service_ms = raw["rows_per_call"] * s["row_ms"]
    travelling = s["workers"] * s["network_ms"] / service_ms
    needed = s["workers"] * (s["network_ms"] + service_ms) / service_ms
    lines = [f"Generated from this run. The service needs about {needed:.0f} requests in flight to keep its "
             f"{s['workers']} workers busy ({s['network_ms'] + service_ms:g} ms in flight for {service_ms:g} ms of "
             f"work each, one call per request) and refuses above about {travelling + s['workers'] + s['queue']:.0f} "
             f"({travelling:.0f} travelling + {s['workers'] + s['queue']} admitted).", ""]
    for case in CASES:
        mine = [r for r in raw["runs"] if r["case"] == case]
        rounds = len(mine)
        bound = sum(r["bound_mean"] for r in mine) / rounds
        in_flight = sum(r["in_flight_mean"] for r in mine) / rounds
        cpu = sum(r["client_cpu_cores"] for r in mine) / rounds
        refusals = sum(r["sent_429"] for r in mine) / rounds
        rows_per_request = sum(r["rows"] for r in mine) / max(1, sum(r["served_requests"] for r in mine))
        of_capacity = summary[case]["of_capacity"]
        goal = "" if case == "fixed" else f" ({'at or above' if of_capacity >= 0.9 else 'below'} the 0.9× goal)"
        gap = ("callers waiting out back-offs after 429s hold no request" if bound - in_flight > 2 else
               "a released slot is taken again only when its next caller thread runs")
        lines.append(
            f"- **{case}**: {of_capacity:.2f}× of capacity{goal}; the bound averaged {bound:.1f} and {in_flight:.1f} "
            f"requests were in flight ({bound - in_flight:.1f} below the bound: {gap}); {rows_per_request:.1f} rows "
            f"a request; {refusals:.0f} 429s a round, each costing its caller a back-off; client CPU {cpu:.2f} cores "
            "of 2.")
    lines += ["", "Rounds on two shared cores spread by about ±5 % between runs; the per-round table has them all."]
    return "\n".join(lines)


def report(raw: dict[str, Any]) -> str:
    summary, settings = raw["summary"], raw["settings"]
    goals = [goal for case in ("adaptive", "defaults") for goal in (
        Goal(f"429 storm: throughput / service capacity ({case})", summary[case]["of_capacity"], 0.9),
        Goal(f"429 storm: retries per row ({case})", summary[case]["retries_per_row"], 0.05, unit="", at_most=True),
    )]
    table = markdown_table(
        ("case", "rows/s", "of capacity", "retries per row", "retries per request", "429s", "rows lost"),
        [(case, f"{s['rows_per_s']:.0f}", f"{s['of_capacity']:.2f}", f"{s['retries_per_row']:.3f}",
          f"{s['retries_per_request']:.3f}", s["sent_429"], s["lost"]) for case, s in summary.items()],
    )
    per_round = markdown_table(
        ("round", "case", "rows", "seconds", "rows/s", "requests", "429s", "bound mean (min-max) / ceiling",
         "in flight, mean", "client CPU, cores", "max admitted"),
        [(r["round"], r["case"], r["rows"], f"{r['seconds']:.2f}", f"{r['rows'] / r['seconds']:.0f}",
          r["served_requests"], r["sent_429"],
          f"{r['bound_mean']:.1f} ({r['bound_min']}-{r['bound_max']}) / {r['ceiling']}",
          f"{r['in_flight_mean']:.1f}", f"{r['client_cpu_cores']:.2f}", r["max_admitted"]) for r in raw["runs"]],
    )
    return f"""# 429 storm: {raw['callers']} threads against a service of fixed capacity

Written by `bench/storm.py` (issue 13, point 3; issue 22). The service (`bench/storm_server.py`) has
{settings['workers']} workers and a queue of {settings['queue']}, holds a worker {settings['row_ms']:g} ms per row and
answers 429 once {settings['workers'] + settings['queue']} requests are admitted; a {settings['network_ms']:g} ms
round trip comes before admission. Its capacity: {raw['capacity_rows_per_s']:.0f} rows/s ({settings['workers']}
workers / {settings['row_ms']:g} ms per row). {raw['callers']} caller threads each make
{raw['calls_per_caller']} calls of {raw['rows_per_call']} texts through the `spcs-embeddings` component. `adaptive`
and `fixed` set 'Max parallelism' {raw['callers']} and turn cross-call coalescing off ('Coalescing window (ms)' 0)
so that each call is its own request; `fixed` also switches the limiter's feedback off in the bench process and
pins its bound at {raw['callers']} (the limiter before issue 13); `defaults` is the component with every setting
at its llm.json default ('Max parallelism' {raw.get('default_ceiling', '?')}, a ceiling; 5 ms coalescing window;
6 attempts, back-off from 1 s with full jitter).

""" + result_sections(goals, table, per_round, reading(raw), raw['facts'])


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--row-ms", type=float, default=5.0)
    parser.add_argument("--network-ms", type=float, default=50.0)
    parser.add_argument("--rows-per-call", type=int, default=4)
    parser.add_argument("--calls-per-caller", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)


def main(argv: list[str] | None = None) -> int:
    return bench_main("storm", __doc__, _options, run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
