"""Before deploying: what a model will cost to keep running and roughly how long the first deployment takes.

The credits come from the instance-family table; the times are rough and say so (inferred: image builds take
minutes and dominate a first deployment; weights are copied at tens of MB/s — not measured on a live account).
"""

from __future__ import annotations

from dataclasses import dataclass

from spcs_llm.deploy.families import instance_families
from spcs_llm.deploy.services.catalog import ModelSpec
from spcs_llm.deploy.services.pools import HOURS_PER_DAY, HOURS_PER_MONTH

IMAGE_BUILD_MINUTES = (10, 30)  # inferred: first build of the serving image on the CPU pool
COPY_MB_PER_SECOND = 50.0  # inferred: Hub → Snowflake stage, and this machine → stage for attached templates
START_MINUTES = (3, 10)  # inferred: node start + weight load once the image exists


@dataclass(frozen=True)
class DeploymentEstimate:
    spec: ModelSpec
    credits_per_hour: float | None
    dollars_per_credit: float
    downloads_here: bool  # the weights pass through the machine running the deployment
    minutes: tuple[int, int]

    @property
    def dollars_per_hour(self) -> float | None:
        return None if self.credits_per_hour is None else self.credits_per_hour * self.dollars_per_credit

    def text(self) -> str:
        spec = self.spec
        if spec.weights_gb is None:
            size = "unknown size"
        else:
            size = f"~{spec.weights_gb:.1f} GB of weights" if spec.weights_gb >= 1 else \
                f"~{spec.weights_gb * 1000:.0f} MB of weights"
        where = ("downloaded to THIS machine, then uploaded to Snowflake" if self.downloads_here
                 else "downloaded by Snowflake itself")
        if self.dollars_per_hour is None:
            cost = f"{spec.instance_family}: not in the table, pass its credits/h"
        else:
            cost = (f"{spec.instance_family}: {self.credits_per_hour:.2f} credits/h (${self.dollars_per_hour:.2f}/h) "
                    f"while a node runs; always on: ${self.dollars_per_hour * HOURS_PER_DAY:,.0f}/day, "
                    f"${self.dollars_per_hour * HOURS_PER_MONTH:,.0f}/month")
        return (f"{spec.key}: {size}, {where}. {cost}. First deployment roughly {self.minutes[0]}-{self.minutes[1]} "
                "min (image build, weight copy, start); re-runs reuse what exists.")


def estimate(spec: ModelSpec, dollars_per_credit: float) -> DeploymentEstimate:
    family = instance_families().get(spec.instance_family)
    rate = spec.credits_per_hour if spec.credits_per_hour is not None else (family.credits_per_hour if family else None)
    copy_minutes = 0 if spec.weights_gb is None else round(spec.weights_gb * 1000 / COPY_MB_PER_SECOND / 60)
    copies = 2 if spec.attach_chat_template else 1
    low = IMAGE_BUILD_MINUTES[0] + START_MINUTES[0] + copies * copy_minutes
    high = IMAGE_BUILD_MINUTES[1] + START_MINUTES[1] + copies * copy_minutes * 3
    return DeploymentEstimate(spec, rate, dollars_per_credit, spec.attach_chat_template, (low, high))
