"""``spcs-llm finetune``: train a LoRA adapter for a catalog chat model as a Snowflake ML job on a GPU pool.

Arguments are checked before any connection; the Snowflake checks (pool, table or stage file) come next, then the
cost estimate and a confirmation (``--yes`` skips it), and only then is the job submitted. ``--no-wait`` prints the
job id; ``--attach JOB_ID`` waits for such a job later. ``--dry-run`` prints the checks and the ``submit_file`` call
with its arguments instead, without opening a session.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from spcs_llm.cli.services import add_debug_option, add_dry_run_option, add_name_options, add_session_options
from spcs_llm.cli.services_run import Ask, check_positive, confirm_billed, names_from, session_for
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.finetune.cost import cost_line, outcome_cost_line
from spcs_llm.deploy.finetune.job import (
    FinetuneJob,
    TrainingSource,
    attach_finetune,
    check_finetune,
    plan_finetune,
    submit_checked,
    wait_for_finetune,
)
from spcs_llm.deploy.finetune.training import LoraSettings
from spcs_llm.deploy.finetune.training_data import TrainingColumns
from spcs_llm.deploy.services.catalog import CATALOG

FINETUNE_NAMES = ("database", "schema", "gpu_pool", "external_access_integration", "hf_secret")


def register(subparsers: Any) -> None:
    chat_keys = ", ".join(key for key, spec in CATALOG.items() if spec.kind == "chat" and not spec.attach_chat_template)
    parser = subparsers.add_parser(
        "finetune", help="train a LoRA adapter on prompt/response pairs as a Snowflake ML job (GPU pool)",
        description="The pairs have an instruction, an optional input and an output (the Snowflake Llama 2 "
                    "fine-tuning quickstart's shape), in a table or a JSONL / CSV file on a stage.")
    parser.add_argument("model", nargs="?", help=f"catalog chat model to fine-tune ({chat_keys})")
    parser.add_argument("--attach", metavar="JOB_ID", help="wait for a job submitted earlier and print its report")
    data = parser.add_argument_group("training pairs (one of)")
    data.add_argument("--table", help="table of pairs: TABLE (in --database/--schema) or DB.SCHEMA.TABLE")
    data.add_argument("--stage-file", help="JSONL or CSV file of pairs on a stage, e.g. @MY_STAGE/pairs.jsonl")
    data.add_argument("--instruction-column", default="instruction", help="default instruction")
    data.add_argument("--input-column", default="input", help="optional column appended to the instruction "
                                                              "(default input; ignored when absent)")
    data.add_argument("--output-column", default="output", help="default output")
    training = parser.add_argument_group("LoRA training")
    defaults = LoraSettings()
    training.add_argument("--rank", type=int, default=defaults.rank, help=f"default {defaults.rank}")
    training.add_argument("--alpha", type=int, default=defaults.alpha, help=f"default {defaults.alpha}")
    training.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                          help=f"default {defaults.learning_rate:g}")
    training.add_argument("--max-steps", type=int, default=defaults.max_steps, help=f"default {defaults.max_steps}")
    training.add_argument("--batch-size", type=int, help="pairs per step (default: all pairs in every step)")
    training.add_argument("--system-prompt", help="system prompt the pairs are trained under (use it when asking)")
    job = parser.add_argument_group("job")
    job.add_argument("--output-stage", help="stage folder for the adapter (default @SPCS_LLM_ADAPTERS/<job name>)")
    job.add_argument("--base-model-stage", help="stage folder holding the base model's files, instead of the Hub")
    job.add_argument("--compute-pool", help="pool to train on (default: --gpu-pool)")
    job.add_argument("--allow-cpu-pool", action="store_true", help="accept a CPU pool (tiny models only)")
    job.add_argument("--no-external-access", action="store_true",
                     help="no egress integration (then peft must be in the runtime and the model on a stage)")
    job.add_argument("--wait", dest="wait", action="store_true", default=True, help="wait for the result (default)")
    job.add_argument("--no-wait", dest="wait", action="store_false", help="print the job id and return")
    job.add_argument("--timeout", type=float, default=-1.0, help="seconds to wait (default: no limit)")
    job.add_argument("--dollars-per-credit", type=float, default=3.0, help="for the cost lines (default 3)")
    job.add_argument("--yes", action="store_true", help="do not ask before submitting (needed without a terminal)")
    add_dry_run_option(parser, what="the checks and the snowflake.ml.jobs.submit_file call")
    add_name_options(parser, FINETUNE_NAMES)
    add_session_options(parser)
    add_debug_option(parser)
    parser.set_defaults(handler=finetune_command)


def _source(args: argparse.Namespace) -> TrainingSource:
    columns = TrainingColumns(instruction=args.instruction_column, output=args.output_column,
                              input=args.input_column or None)
    return TrainingSource(table=args.table, stage_file=args.stage_file, columns=columns)


def _settings(args: argparse.Namespace) -> LoraSettings:
    return LoraSettings(rank=args.rank, alpha=args.alpha, learning_rate=args.learning_rate, max_steps=args.max_steps,
                        batch_size=args.batch_size, system_prompt=args.system_prompt or None)


def finetune_command(args: argparse.Namespace, ask: Ask | None = None) -> int:
    if (args.model is None) == (args.attach is None):
        raise ConfigurationError("Give a model to fine-tune, or --attach with the id of a submitted job.",
                                 fix="Run e.g. `spcs-llm finetune zephyr-7b-beta --table PAIRS`.")
    check_positive(args, "--dollars-per-credit")
    if args.attach:
        if getattr(args, "dry_run", False):
            raise ConfigurationError("--dry-run previews submitting a job; --attach only waits for one.",
                                     fix="Drop --dry-run to wait for the job, or give a model to preview.")
        return _report(attach_finetune(session_for(args), args.attach), args)
    names = names_from(args)
    plan = plan_finetune(names, args.model, _source(args), args.output_stage, _settings(args),
                         compute_pool=args.compute_pool, base_model_stage=args.base_model_stage)
    if args.dry_run:
        from spcs_llm.deploy.preview import finetune_preview

        print(finetune_preview(names, plan, external_access=not args.no_external_access,
                               allow_cpu_pool=args.allow_cpu_pool))
        return 0
    session = session_for(args)
    checked = check_finetune(session, plan, allow_cpu_pool=args.allow_cpu_pool)
    print(f"{plan.spec.key}: {checked.examples} pairs, {plan.settings.max_steps} steps on {plan.compute_pool}.")
    print(cost_line(checked, args.dollars_per_credit))
    if not args.yes:
        confirm_billed("Submit the job?", "spcs-llm finetune", ask)
    job = submit_checked(session, names, checked, external_access=not args.no_external_access)
    print(f"Submitted fine-tuning job {job.job_id} on {job.compute_pool} ({job.examples} pairs).")
    print(f"The adapter will be saved to {job.adapter_location}")
    if not args.wait:
        print(f"Wait for it with: spcs-llm finetune --attach {job.job_id}")
        return 0
    return _report(job, args)


def _report(job: FinetuneJob, args: argparse.Namespace) -> int:
    outcome = wait_for_finetune(job, args.timeout)
    print(f"Job {outcome.job_id} done: {len(outcome.losses)} steps on {outcome.examples} pairs, "
          f"loss {outcome.losses[0]:.4f} -> {outcome.losses[-1]:.4f}.")
    print(outcome_cost_line(outcome, args.dollars_per_credit))
    print(f"Adapter: {outcome.adapter_location}")
    print(next_step(outcome.base_model, outcome.adapter_location))
    return 0


def next_step(base_model: str, adapter_location: str) -> str:
    """The ``serve-adapters`` command that serves the trained adapter beside its base model (its name, what Dataiku
    will send as the model, is the adapter folder's name made a plain identifier)."""
    folder = adapter_location.rstrip("/").rsplit("/", 1)[-1]
    alias = re.sub(r"[^A-Za-z0-9_]", "_", folder)
    alias = alias if alias[:1].isalpha() else f"adapter_{alias}"
    model = next((key for key, spec in CATALOG.items() if base_model in (key, spec.hf_id)), None)
    if model is None:  # trained over a stage copy: the catalog key is not in the report
        return (f"Next: serve it with `spcs-llm serve-adapters <base model> --adapter {alias}={adapter_location}` "
                f"(the base model the job trained over: {base_model}).")
    return f"Next: serve it with `spcs-llm serve-adapters {model} --adapter {alias}={adapter_location}`."
