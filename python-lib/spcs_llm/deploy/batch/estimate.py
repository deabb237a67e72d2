"""What a bulk inference run should cost, printed before it starts: pool credits/h × nodes × expected hours.

Expected hours = start-up + rows × seconds per row ÷ nodes, billed for at least five minutes. Seconds per row is
either given (measure it: a service-function run prints what it measured) or a stated assumption per model kind and
engine. It is an estimate, and the text says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spcs_llm.deploy.services.estimate import IMAGE_BUILD_MINUTES, START_MINUTES
from spcs_llm.deploy.services.pools import MINIMUM_BILLED_SECS

# inferred, not measured on a live account: a 7B chat model on one A10G answers ~250-token replies at about
# 5 rows/s when vLLM batches them, but one at a time (~8 s each) on the Python engine; a small embedding model
# on CPU encodes ~50 short texts/s.
ASSUMED_SECONDS_PER_ROW = {("chat", "vllm"): 0.2, ("chat", "python"): 8.0, ("embedding", "python"): 0.02}


def _minutes(low: float, high: float) -> str:
    """A range of minutes as people read it, widened to whole minutes: "under a minute", "about 3 min", "4-12 min"."""
    if high < 1:
        return "under a minute"
    low_whole, high_whole = max(math.floor(low), 1), math.ceil(high)
    return f"about {high_whole} min" if low_whole == high_whole else f"{low_whole}-{high_whole} min"


@dataclass(frozen=True)
class BatchEstimate:
    rows: int
    mode: str  # "job" | "service"
    instance_family: str
    credits_per_node_hour: float | None  # None: the family is not in the shipped table
    nodes: int
    seconds_per_row: float
    seconds_per_row_given: bool
    startup_seconds: tuple[float, float]  # low, high
    dollars_per_credit: float

    def run_seconds(self, startup: float) -> float:
        return startup + self.rows * self.seconds_per_row / self.nodes

    def credits(self, startup: float) -> float | None:
        if self.credits_per_node_hour is None:
            return None
        billed = max(self.run_seconds(startup), MINIMUM_BILLED_SECS)
        return self.credits_per_node_hour * self.nodes * billed / 3600.0

    @property
    def credits_range(self) -> tuple[float, float] | None:
        low, high = (self.credits(startup) for startup in self.startup_seconds)
        return None if low is None or high is None else (low, high)

    def text(self) -> str:
        basis = ("seconds per row as given" if self.seconds_per_row_given
                 else "an assumed rate for this kind of model and engine; measure yours with a small service run")
        minutes = [self.run_seconds(startup) / 60 for startup in self.startup_seconds]
        head = (f"Estimate (not a quote): {self.rows:,} rows × {self.seconds_per_row:g} s/row ({basis}) ÷ "
                f"{self.nodes} node(s)")
        if self.startup_seconds[1]:
            head += f" + {self.startup_seconds[0] / 60:.0f}-{self.startup_seconds[1] / 60:.0f} min start-up"
        head += f" ≈ {_minutes(minutes[0], minutes[1])} on {self.instance_family}."
        credits = self.credits_range
        if credits is None:
            return head + f" {self.instance_family} is not in the credits table: cost unknown."
        cost = (f" Cost ≈ {self.credits_per_node_hour:g} credits/h × {self.nodes} node(s) × hours "
                f"(5 min minimum) = "
                f"{credits[0]:.2f}-{credits[1]:.2f} credits (${credits[0] * self.dollars_per_credit:,.2f}-"
                f"${credits[1] * self.dollars_per_credit:,.2f} at ${self.dollars_per_credit:g}/credit).")
        if self.mode == "service":
            cost += " The service's pool bills these hours anyway while the service is up."
        return head + cost


def estimate_batch(*, rows: int, mode: str, kind: str, engine: str, instance_family: str,
                   credits_per_node_hour: float | None, nodes: int, dollars_per_credit: float,
                   seconds_per_row: float | None = None) -> BatchEstimate:
    """A job starts its own nodes (and builds an image unless an engine such as vLLM is set: snowml builds none
    then); the service path uses a service that is already deployed."""
    if mode == "job":
        build = (0, 0) if engine == "vllm" else IMAGE_BUILD_MINUTES
        startup = ((START_MINUTES[0] + build[0]) * 60.0, (START_MINUTES[1] + build[1]) * 60.0)
    else:
        startup = (0.0, 0.0)
    assumed = ASSUMED_SECONDS_PER_ROW.get((kind, engine), ASSUMED_SECONDS_PER_ROW[(kind, "python")])
    return BatchEstimate(
        rows=rows, mode=mode, instance_family=instance_family, credits_per_node_hour=credits_per_node_hour,
        nodes=nodes, seconds_per_row=seconds_per_row if seconds_per_row is not None else assumed,
        seconds_per_row_given=seconds_per_row is not None, startup_seconds=startup,
        dollars_per_credit=dollars_per_credit,
    )
