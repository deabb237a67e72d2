"""What a fine-tuning job costs: the pool's credits/h times a rough expected time before submitting, and the
credits billed once it has run. Node starts bill at least five minutes (``pools.MINIMUM_BILLED_SECS``)."""

from __future__ import annotations

from spcs_llm.deploy.finetune.job import CheckedFinetune, FinetuneJob, FinetuneOutcome
from spcs_llm.deploy.finetune.training import LoraSettings
from spcs_llm.deploy.services.catalog import ModelSpec
from spcs_llm.deploy.services.estimate import COPY_MB_PER_SECOND, START_MINUTES
from spcs_llm.deploy.services.pools import MINIMUM_BILLED_SECS

SECONDS_PER_STEP = (1.0, 6.0)  # inferred: one LoRA step of a 7B model on one A10G-class GPU, small batches


def expected_minutes(spec: ModelSpec, settings: LoraSettings) -> tuple[int, int]:
    """Rough wall time: node start, weight download, then the steps (inferred rates, said so in the output)."""
    download = 0.0 if spec.weights_gb is None else spec.weights_gb * 1000 / COPY_MB_PER_SECOND / 60
    low = START_MINUTES[0] + download + settings.max_steps * SECONDS_PER_STEP[0] / 60
    high = START_MINUTES[1] + 3 * download + settings.max_steps * SECONDS_PER_STEP[1] / 60
    return round(low), round(high) + 1


def cost_line(job: FinetuneJob | CheckedFinetune, dollars_per_credit: float) -> str:
    """What the job will bill — pool credits/h times the expected time (rough), at least five minutes; for a
    checked plan, before it is submitted."""
    spec, settings = job.spec, job.settings
    if job.credits_per_hour is None:
        return f"Cost: pool {job.compute_pool} ({job.instance_family or 'unknown family'}) has no known credits/h."
    rate = f"{job.credits_per_hour:.2f} credits/h (${job.credits_per_hour * dollars_per_credit:.2f}/h)"
    if spec is None or settings is None:
        return f"Cost: pool {job.compute_pool} ({job.instance_family}) bills {rate} while the job runs."
    low, high = expected_minutes(spec, settings)
    least = max(low * 60, MINIMUM_BILLED_SECS) / 3600 * job.credits_per_hour
    most = high / 60 * job.credits_per_hour
    return (f"Cost: pool {job.compute_pool} ({job.instance_family}) bills {rate} while the job runs; expected "
            f"{low}-{high} min (rough: node start, weight download, {settings.max_steps} steps) ≈ {least:.2f}-"
            f"{most:.2f} credits (${least * dollars_per_credit:.2f}-${most * dollars_per_credit:.2f}).")


def outcome_cost_line(outcome: FinetuneOutcome, dollars_per_credit: float) -> str:
    if outcome.credits is None:
        return f"Training took {outcome.training_seconds:.0f} s."
    measured = "since submission" if outcome.elapsed_seconds is not None else "of training (node start not included)"
    seconds = outcome.elapsed_seconds if outcome.elapsed_seconds is not None else outcome.training_seconds
    return (f"Billed about {outcome.credits:.3f} credits (${outcome.credits * dollars_per_credit:.2f}) for "
            f"{seconds:.0f} s {measured}, at least five minutes per node start.")
