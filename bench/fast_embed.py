"""Fast-model embeddings: the connector's own ceiling when the model costs almost nothing.

The service is ``storm_server.py`` in a GPU-class profile: 0.5 ms per row, 16 workers and a queue of 16, a
50 ms round trip before admission, and a 384-float vector per row (what MiniLM returns), so the numbers measure the
client: request encoding, the round trip, decoding and checking the vectors. Cases, interleaved in rounds in one
process so that they see the same machine load:

- ``reference``: the reference connector's algorithm (one text per request, serially; ``embed_throughput.py``);
- ``component defaults``: the ``spcs-embeddings`` component at its llm.json defaults as DSS fills them in (64 rows,
  'Max parallelism' 64, a ceiling for the adaptive limiter since issue 22; the harness alone would leave the code's
  fallback of 4);
- ``component tuned``: the same with 'Max parallelism' 16 (the service's workers);
- ``component tuned, stdlib json``: the same with the answer decoded by the stdlib ``json`` (as when ``orjson`` is
  not installed, and as before the hot path was cut), for the before/after in one run;
- ``raw client``: the fastest client written here: 64-row batches from 16 threads over pooled connections, the
  fastest decoder installed (``orjson.loads``, else ``json.loads``) for the answer, no validation.

Reported: texts/s, ratios (medians over rounds, each round's cases interleaved), the bench process's CPU time per
text (all its threads; the service runs in its own process), the limiter's bound during the component cases, and the
client's CPU per stage (issue 22, S2): each stage timed alone over the corpus on one thread, and the whole client
over a stub transport (no HTTP, no threads), so the per-text costs are stable where whole rounds on shared cores are
not.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from benchkit import (
    Goal,
    LimiterSampler,
    bench_main,
    machine_facts,
    markdown_table,
    mixed_corpus,
    pat_config,
    result_sections,
    shipped_default,
    snowflake_token_header,
)
from embed_throughput import ReferenceEmbedder, plugin_embed
from spcs_llm.core import json_codec
from spcs_llm.core.endpoint_state import reset_endpoint_registry
from spcs_llm.core.transport import CallResult
from spcs_llm.dss.embedding import EmbeddingRow, embedding_response, unembeddable_reason
from spcs_llm.spcs.config import parse_embedding_config
from spcs_llm.spcs.embeddings import EmbeddingClient
from spcs_llm.spcs.protocol import parse_embedding_output, unwrap
from spcs_standin.harness import load_component
from storm_server import configure, fixed_capacity_service

SERVICE = {"workers": 16, "queue": 16, "service_ms": 0.0, "row_ms": 0.5, "network_ms": 50.0}
RAW_THREADS = 16
RAW_ROWS = 64
CASES = ("reference", "component defaults", "component tuned", "component tuned, stdlib json", "raw client")
STDLIB_CASE = "component tuned, stdlib json"
SHIPPED = ("max_parallelism", "rows_per_request", "max_request_bytes", "coalesce_window_ms")  # llm.json defaults
DECODER = json_codec.orjson.loads if json_codec.orjson is not None else json.loads


class RawClient:
    """Batched and parallel, nothing checked: the ceiling of any Python client over this HTTP stack."""

    def __init__(self, endpoint: str, pat: str):
        self.url = f"{endpoint}/encode"
        self.headers = snowflake_token_header(pat)
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_maxsize=RAW_THREADS))

    def _batch(self, texts: list[str]) -> list[list[float]]:
        body = json.dumps({"dataframe_records": [{"sentence": text} for text in texts]})
        answer = self.session.post(self.url, data=body, headers=self.headers, timeout=60)
        answer.raise_for_status()
        return [row[1]["output"] for row in DECODER(answer.content)["data"]]

    def embed(self, texts: list[str]) -> list[list[float]]:
        batches = [texts[start:start + RAW_ROWS] for start in range(0, len(texts), RAW_ROWS)]
        with ThreadPoolExecutor(max_workers=RAW_THREADS) as pool:
            return [vector for part in pool.map(self._batch, batches) for vector in part]


def embedder(case: str, url: str, pat: str) -> Any:
    if case == "reference":
        return ReferenceEmbedder(url, pat).embed
    if case == "raw client":
        return RawClient(url, pat).embed
    reset_endpoint_registry()
    settings = {name: shipped_default("spcs-embeddings", name) for name in SHIPPED}  # as DSS fills them in
    if case.startswith("component tuned"):
        settings["max_parallelism"] = 16
    return plugin_embed(load_component("spcs-embeddings", pat_config(url, pat, **settings)))


@contextmanager
def stdlib_json_if(wanted: bool) -> Iterator[None]:
    """Decode answers with the stdlib for the duration, as a plugin env without ``orjson`` does."""
    saved = json_codec.orjson
    if wanted:
        json_codec.orjson = None
    try:
        yield
    finally:
        json_codec.orjson = saved


def decode_cost() -> dict[str, float]:
    """CPU µs per row to decode one 64-row answer of 384-float vectors (as the service writes it), per decoder."""
    rng = random.Random(7)
    output = json.dumps({"output": [round(rng.uniform(-0.2, 0.2), 7) for _ in range(384)]})
    body = ('{"data": [' + ", ".join(f"[{i}, {output}]" for i in range(RAW_ROWS)) + "]}").encode()
    costs = {}
    for name, decoder in (("json.loads", json.loads), ("json_codec.loads (orjson)", json_codec.loads)):
        if name.endswith("(orjson)") and json_codec.orjson is None:
            continue
        best = float("inf")
        for _ in range(5):
            cpu = time.process_time()
            for _ in range(50):
                decoder(body)
            best = min(best, (time.process_time() - cpu) / 50 / RAW_ROWS)
        costs[name] = 1e6 * best
    return costs


def answer_for(count: int, rng: random.Random) -> bytes:
    """An answer of ``count`` rows of 384 floats, as the service writes it."""
    rows = ", ".join(f"[{i}, " + json.dumps({"output": [round(rng.uniform(-0.2, 0.2), 7) for _ in range(384)]}) + "]"
                     for i in range(count))
    return ('{"data": [' + rows + "]}").encode()


def cpu_us_per(count: int, work: Any, repeat: int = 5) -> float:
    """The best of ``repeat`` CPU times of ``work()``, in µs per ``count`` items."""
    best = float("inf")
    for _ in range(repeat):
        cpu = time.process_time()
        work()
        best = min(best, time.process_time() - cpu)
    return 1e6 * best / count


def stage_costs(corpus: list[str]) -> dict[str, float]:
    """CPU µs per text of each client stage alone (one thread), and of the whole client over a stub transport.

    Stages: the input checks and sizing (``unembeddable_reason`` and ``row_bytes``, as ``embed`` does once per text),
    batch planning, the request body (build and ``json.dumps``, as the transport does), the token estimate, decoding
    the answer, the vector checks and the DSS response. The raw client pays only the body and the decoding.
    """
    config = parse_embedding_config({"auth_type": "service", "endpoint": "http://stub.invalid",
                                     "service_preset": {"service_auth": "pat", "pat": "bench-pat"},
                                     "coalesce_window_ms": 0, "max_parallelism": 1})
    client = EmbeddingClient(config)
    wire, rng = client.wire, random.Random(7)
    answer = answer_for(RAW_ROWS, rng)
    decoded = json_codec.loads(answer)
    outputs = unwrap(decoded, RAW_ROWS)
    batches = [corpus[start:start + RAW_ROWS] for start in range(0, len(corpus), RAW_ROWS)]
    costs = {
        "input checks and sizing": cpu_us_per(len(corpus), lambda: [
            (unembeddable_reason(t), wire.row_bytes(t)) for t in corpus]),
        "batch planning": cpu_us_per(len(corpus), lambda: client._plan_batches(corpus, list(range(len(corpus))))),
        "request body (build + json.dumps)": cpu_us_per(len(corpus), lambda: [
            json.dumps(wire.body(batch)).encode() for batch in batches]),
        "token estimate": cpu_us_per(len(corpus), lambda: [client.counter.count(t) for t in corpus]),
        "decoding the answer (orjson)": cpu_us_per(RAW_ROWS * 20, lambda: [json_codec.loads(answer)
                                                                           for _ in range(20)]),
        "vector checks": cpu_us_per(RAW_ROWS * 20, lambda: [parse_embedding_output(o, protocol="encode")
                                                            for _ in range(20) for o in outputs]),
    }
    rows = [EmbeddingRow(vector=parse_embedding_output(outputs[0], protocol="encode"))] * len(corpus)
    costs["DSS response"] = cpu_us_per(len(corpus), lambda: embedding_response(rows, False, {}))

    answers = {RAW_ROWS: answer}

    def stub_post(route: str, body: dict, **_: Any) -> CallResult:
        """The transport's part the raw client pays too (encoding the body, decoding the answer), without HTTP."""
        json.dumps(body).encode()
        count = len(next(iter(body.values())))
        if count not in answers:
            answers[count] = answer_for(count, rng)  # made in the warm-up call, outside the timing
        return CallResult(payload=json_codec.loads(answers[count]), status=200)

    client.transport.post_json = stub_post
    client.embed(corpus)
    costs["whole client, stub transport (no HTTP)"] = cpu_us_per(len(corpus), lambda: client.embed(corpus), 3)
    return costs


def timed(embed: Any, texts: list[str], url: str | None) -> dict[str, float]:
    sampler = LimiterSampler(url) if url else None
    cpu, wall = time.process_time(), time.perf_counter()
    if sampler:
        with sampler:
            vectors = embed(texts)
    else:
        vectors = embed(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if len(vectors) != len(texts):
        raise RuntimeError(f"{len(texts) - len(vectors)} texts lost")
    return {"texts": len(texts), "seconds": wall, "cpu_seconds": cpu, **(sampler.summary() if sampler else {})}


def measure(embed: Any, texts: list[str], url: str | None = None, twice: bool = True) -> dict[str, float]:
    """The first call after start-up (the limiter still learning the service from its initial bound), then the same
    call again (``steady``: what a DSS process that has embedded before gets, as the limiter is process-wide per
    endpoint). The goals read the steady call; the first call is reported beside it."""
    embed(texts[:8])  # warm-up: a connection, the dimension check
    first = timed(embed, texts, url)
    steady = timed(embed, texts, url) if twice else first
    return {**steady, "first_seconds": first["seconds"], "first_cpu_seconds": first["cpu_seconds"],
            **({"first_bound_mean": first["bound_mean"]} if "bound_mean" in first else {})}


def run(args: argparse.Namespace) -> dict[str, Any]:
    facts = machine_facts()
    corpus = mixed_corpus(args.texts)
    runs: list[dict[str, Any]] = []
    with fixed_capacity_service() as url:
        configure(url, **SERVICE)
        for round_number in range(args.rounds):
            for case in CASES[round_number % len(CASES):] + CASES[:round_number % len(CASES)]:
                texts = corpus[:args.reference_texts] if case == "reference" else corpus
                with stdlib_json_if(case == STDLIB_CASE):
                    result: dict[str, Any] = {"case": case, "round": round_number,
                              **measure(embedder(case, url, "bench-pat"), texts,
                                        url if case.startswith("component") else None, case != "reference")}
                runs.append(result)
                print(f"  round {round_number} {case}: {result['texts'] / result['first_seconds']:.0f} texts/s first, "
                      f"{result['texts'] / result['seconds']:.0f} texts/s steady, "
                      f"{1e6 * result['cpu_seconds'] / result['texts']:.0f} µs CPU per text", flush=True)
    summary: dict[str, dict[str, float]] = {}
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        summary[case] = {"texts_per_s": statistics.median(r["texts"] / r["seconds"] for r in mine),
                         "first_texts_per_s": statistics.median(r["texts"] / r["first_seconds"] for r in mine),
                         "cpu_us_per_text": statistics.median(1e6 * r["cpu_seconds"] / r["texts"] for r in mine)}
        if "bound_mean" in mine[0]:
            summary[case].update({key: statistics.median(r[key] for r in mine) for key in (
                "bound_mean", "bound_max", "in_flight_mean", "client_cpu_cores", "first_bound_mean")})
    return {"facts": facts, "service": SERVICE, "texts": args.texts, "reference_texts": args.reference_texts,
            "runs": runs, "summary": summary, "decode_us_per_row": decode_cost(), "stages_us_per_text":
            stage_costs(corpus), "orjson": getattr(json_codec.orjson, "__version__", None),
            **({"before": {**json.loads(open(args.before).read()), "commit": args.before_commit}} if args.before
               else {})}


def limits(raw: dict[str, Any]) -> dict[str, str]:
    """What holds each goal back, read from this run's measurements (limiter samples, CPU per stage)."""
    s, stages = raw["summary"], raw["stages_us_per_text"]
    raw_cpu = s["raw client"]["cpu_us_per_text"]
    extra = {name: cost for name, cost in stages.items() if name not in (
        "request body (build + json.dumps)", "decoding the answer (orjson)", "whole client, stub transport (no HTTP)")}
    top = ", ".join(f"{name} {cost:.1f} µs" for name, cost in sorted(extra.items(), key=lambda kv: -kv[1])[:3])
    defaults = s["component defaults"]
    stub = stages["whole client, stub transport (no HTTP)"]
    wire = stages["request body (build + json.dumps)"] + stages["decoding the answer (orjson)"]
    raw_http, comp_cpu = raw_cpu - wire, defaults["cpu_us_per_text"]
    first = (f"{defaults['first_bound_mean']:.1f} (defaults) and {s['component tuned']['first_bound_mean']:.1f} "
             f"(tuned)" if "first_bound_mean" in defaults else "not sampled")
    return {
        "defaults": (f"requests in flight: the limiter's bound had a mean of {defaults['bound_mean']:.1f} (max "
                     f"{defaults['bound_max']:.0f}) and {defaults['in_flight_mean']:.1f} requests were in flight on "
                     f"average, against the raw client's {RAW_THREADS} threads on a service of "
                     f"{SERVICE['workers']} workers; client CPU {defaults['client_cpu_cores']:.2f} cores of 2"),
        "tuned": (f"the limiter's bound had a mean of {s['component tuned']['bound_mean']:.1f} (ceiling 16), "
                  f"{s['component tuned']['in_flight_mean']:.1f} requests in flight on average; client CPU "
                  f"{s['component tuned']['client_cpu_cores']:.2f} cores of 2 (the service process shares them); "
                  f"the per-text stages the raw client skips: {top}"),
        "first": (f"the limiter starts at 8 requests in flight and doubles its bound once per window (as many "
                  f"answers as the bound, about one round trip of 82 ms here) while the raw client has 16 from its "
                  f"first request; in a first call of about half a second the bound's mean was {first}"),
        "cpu": (f"the raw client spends {raw_cpu:.0f} µs per text, {raw_http:.0f} µs of it besides the request body "
                f"and decoding (the HTTP stack, its threads). The component's whole client over a stub transport "
                f"costs {stub:.0f} µs per text ({wire:.0f} µs of it body and decoding, then {top}), and the process "
                f"{comp_cpu:.0f} µs at defaults, so {comp_cpu - stub:.0f} µs per text (by difference) go to the HTTP "
                f"stack, the transport and the threads, {comp_cpu - stub - raw_http:+.0f} µs against the raw "
                f"client's HTTP. Even with HTTP and threads as cheap as the raw client's, the component would spend "
                f"{stub + raw_http:.0f} µs, {(stub + raw_http) / raw_cpu:.2f}× the raw client"),
    }


def reading(raw: dict[str, Any]) -> str:
    """The stages, the before/after (issue 22) when a run of the earlier code was given, and what limits each."""
    stages, before = raw["stages_us_per_text"], raw.get("before")
    rows = []
    for name, cost in stages.items():
        was = before["stages_us_per_text"].get(name) if before else None
        rows.append((name, f"{was:.1f}" if was is not None else "–", f"{cost:.1f}"))
    table = markdown_table(("stage (one thread, alone)", "µs per text before", "µs per text after"), rows)
    lim = limits(raw)
    s = raw["summary"]
    tuned = s["component tuned"]["texts_per_s"] / s["raw client"]["texts_per_s"]
    defaults = s["component defaults"]["texts_per_s"] / s["raw client"]["texts_per_s"]
    first_tuned = (s["component tuned"].get("first_texts_per_s", 0.0)
                   / s["raw client"].get("first_texts_per_s", s["raw client"]["texts_per_s"]))
    return f"""Client CPU per stage (`stage_costs`: each stage alone over the corpus on one thread, best of 5; the whole
client over a stub transport that answers at once, so no HTTP and no threads). "Before" is the committed run of this
bench before this change ({before["commit"] if before else "not given"}).

{table}

What this change did (issue 22, "Less CPU per text"; every result and error as before, tested):

- **Token estimate** (`core/tokens.py`): ASCII text is counted without the regex: one `bytes.translate` to a class
  per character (derived from the regex's own `\\w` and `\\s`) and four `bytes.count`s, and its byte length is its
  length; other text still goes through the regex (tests compare both on every ASCII character and mixes).
- **Vector checks** (`spcs/protocol.py`): the types of a vector's values are counted in a list (`list.count(float)`)
  instead of hashed into a set; the finiteness check stays one `sum`.
- **The session no longer trusts the environment** (`core/endpoint_state.py`): `requests` applied Basic auth from a
  `~/.netrc` entry for the host over our `Authorization` header (tested) and looked for the file on every request;
  the transport reads proxies and the CA bundle itself, once per URL (tested). `prepare_request` by timeit: 88 →
  73 µs without a `.netrc`, 135 → 72 µs with one (for another host).
- Still as measured before: the transport's own Python costs what the raw client's `session.post` does within noise
  (42.6 vs 43.4 µs per text, serially over real HTTP); 'tuned' at {tuned:.2f}× and the defaults at {defaults:.2f}×
  the raw client, the first call at {first_tuned:.2f}× (tuned).

What limits each goal (measured):

- component at defaults / raw client: {lim["defaults"]}.
- component tuned / raw client: {lim["tuned"]}.
- first call after start-up: {lim["first"]}.
- client CPU per text / raw client's: {lim["cpu"]}. What is left per text beyond the raw client's work is the
  vector checks (a type pass and a `sum` over 384 values: about 5 and 1.4 µs by timeit, the floor of a per-value
  pass in Python) and the token estimate; the rest is the HTTP stack and the threads.

Half-second rounds on two shared cores spread widely: read the per-round table; ratios are medians over rounds of
one run."""


def report(raw: dict[str, Any]) -> str:
    s = raw["summary"]
    speed = {case: s[case]["texts_per_s"] for case in CASES}
    first = {case: s[case].get("first_texts_per_s", s[case]["texts_per_s"]) for case in CASES}
    cpu = {case: s[case]["cpu_us_per_text"] for case in CASES}
    goals = [
        Goal("component (defaults) / reference algorithm", speed["component defaults"] / speed["reference"], 100),
        Goal("component (tuned) / reference algorithm", speed["component tuned"] / speed["reference"], 100),
        Goal("component (defaults) / raw client", speed["component defaults"] / speed["raw client"], 0.8),
        Goal("component (tuned) / raw client", speed["component tuned"] / speed["raw client"], 0.9),
        Goal("first call after start-up: component (defaults) / raw client",
             first["component defaults"] / first["raw client"], 0.8),
        Goal("first call after start-up: component (tuned) / raw client",
             first["component tuned"] / first["raw client"], 0.9),
        Goal("client CPU per text, component (defaults) / raw client", cpu["component defaults"] / cpu["raw client"],
             1.3, at_most=True),
        Goal("client CPU per text, component (tuned) / raw client", cpu["component tuned"] / cpu["raw client"],
             1.3, at_most=True),
    ]
    before = raw.get("before")
    if before:
        was = before["summary"]

        def ratio(summary: dict[str, Any], case: str, key: str) -> str:
            return f"{summary[case][key] / summary['raw client'][key]:.2f}×"

        goals_before = markdown_table(("goal", "before", "after"), [
            (label, ratio(was, case, key), ratio(s, case, key)) for label, case, key in (
                ("component (defaults) / raw client", "component defaults", "texts_per_s"),
                ("component (tuned) / raw client", "component tuned", "texts_per_s"),
                ("CPU per text, defaults / raw client", "component defaults", "cpu_us_per_text"),
                ("CPU per text, tuned / raw client", "component tuned", "cpu_us_per_text"))])
        raw = {**raw, "before_table": goals_before}
    table = markdown_table(
        ("case", "texts/s (steady)", "vs reference", "vs raw client", "first call texts/s", "first vs raw client",
         "client CPU per text"),
        [(case, f"{speed[case]:.0f}", f"{speed[case] / speed['reference']:.1f}×",
          f"{speed[case] / speed['raw client']:.2f}×", f"{first[case]:.0f}",
          f"{first[case] / first['raw client']:.2f}×",
          f"{s[case]['cpu_us_per_text']:.0f} µs") for case in CASES],
    )
    per_round = markdown_table(
        ("round", "case", "texts", "first call s", "seconds (steady)", "texts/s (steady)", "CPU s (steady)"),
        [(r["round"], r["case"], r["texts"], f"{r.get('first_seconds', r['seconds']):.2f}", f"{r['seconds']:.2f}",
          f"{r['texts'] / r['seconds']:.0f}", f"{r['cpu_seconds']:.2f}") for r in raw["runs"]],
    )
    service = raw["service"]
    return f"""# Fast-model embeddings: the connector's own ceiling

Written by `bench/fast_embed.py` (issue 13, point 1). The service (`bench/storm_server.py`)
holds a worker {service['row_ms']:g} ms per row ({service['workers']} workers, queue {service['queue']}) after a
{service['network_ms']:g} ms round trip, and answers a 384-float vector per row. The components and the raw client
embed {raw['texts']:,} texts of the mixed corpus per round, twice: the first call after start-up (the limiter
learning the service from its initial bound of 8) and the same call again (steady: what a DSS process that has
embedded before gets, since the limiter is process-wide per endpoint); the goals without "first call" read the
steady one. The reference algorithm (one text per request, serially) embeds the first {raw['reference_texts']}
once (its rate does not depend on the count).

""" + result_sections(goals, table, per_round, (
        "Goals before (the committed run before this change, each a ratio within its own run):\n\n"
        f"{raw['before_table']}\n\n" if before else "") + reading(raw), raw['facts'])


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--reference-texts", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="raw JSON of a run of this bench over the earlier code (for before/after)")
    parser.add_argument("--before-commit", default="", help="the commit that earlier run measured")


def main(argv: list[str] | None = None) -> int:
    return bench_main("fast_embed", __doc__, _options, run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
