"""``spcs-llm batch``: run a deployed model over a Snowflake table into an output table, inside Snowflake.

Prints the cost estimate before anything runs and asks to go on (``--yes`` skips the question; without a terminal
it is required). ``--dry-run`` (older name ``--sql-only``) prints the SQL of the run and the ``run_batch`` call
instead, without opening a session; every argument is checked before any session.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from spcs_llm.cli.services import add_debug_option, add_dry_run_option, add_name_options, add_session_options
from spcs_llm.cli.services_run import Ask, check_non_negative, check_positive, confirm_billed, names_from, session_for
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.batch.plan import (
    DEFAULT_STAGE,
    SERVICE_THRESHOLD_ROWS,
    BatchRequest,
    check_request,
    plan_batch_inference,
    reply_query,
)
from spcs_llm.deploy.services.catalog import CATALOG

BATCH_NAMES = ("database", "schema", "gpu_pool", "cpu_pool")


def register(subparsers: Any) -> None:
    batch = subparsers.add_parser(
        "batch", help="run a deployed model over a table into an output table, inside Snowflake",
        description="Small tables go through the model's service (a SQL service function); large ones run as a "
                    f"batch inference job on the compute pool (--mode auto: service below {SERVICE_THRESHOLD_ROWS:,} "
                    "rows when the service exists). Every input row gets a RESPONSE or its own ERROR.")
    batch.add_argument("model", help=f"catalog key ({', '.join(CATALOG)}) or a Hugging Face id, as deployed")
    data = batch.add_argument_group("data")
    data.add_argument("--input-table", required=True, help="table to read (TABLE, SCHEMA.TABLE or DB.SCHEMA.TABLE)")
    data.add_argument("--text-column", required=True, help="column holding the text (prompt or text to embed)")
    data.add_argument("--output-table", required=True, help="table to create: ROW_ID, the text, RESPONSE, ERROR")
    data.add_argument("--overwrite", action="store_true", help="replace the output table if it exists")
    data.add_argument("--stage", default=DEFAULT_STAGE,
                      help=f"internal stage for job input/output (default {DEFAULT_STAGE})")
    run = batch.add_argument_group("how it runs")
    run.add_argument("--mode", choices=("auto", "job", "service"), default="auto", help="default auto")
    run.add_argument("--compute-pool", help="pool of the job (default: the GPU pool for GPU models, else the CPU pool)")
    run.add_argument("--replicas", type=int, default=1, help="job replicas, one node each (default 1)")
    run.add_argument("--engine", choices=("auto", "vllm", "python"), default="auto",
                     help="job engine (default: the model's deployment engine)")
    run.add_argument("--max-model-len", type=int, help="vLLM: max tokens of prompt + reply in the job")
    run.add_argument("--engine-arg", action="append",
                     help="other vLLM argument for the job, e.g. --engine-arg=--enforce-eager")
    run.add_argument("--chunk-rows", type=int, default=1000, help="service path: rows per statement (default 1000)")
    run.add_argument("--poll-interval", type=float, default=30.0, help="job path: seconds between status checks")
    run.add_argument("--timeout", type=float, default=24 * 3600.0, help="job path: seconds to wait (default 86400)")
    chat = batch.add_argument_group("chat models")
    chat.add_argument("--system-prompt", help="system message put before every row's text")
    chat.add_argument("--adapter", help="registry name of a LoRA adapter to answer with (vLLM only)")
    chat.add_argument("--adapter-version", default="V1", help="the adapter's registry version (default V1)")
    chat.add_argument("--max-tokens", type=int, help="max_completion_tokens per reply")
    chat.add_argument("--temperature", type=float)
    registry = batch.add_argument_group("registry")
    registry.add_argument("--version", default="V1", help="model version (default V1)")
    registry.add_argument("--model-name", help="registry model name (default: the catalog's)")
    registry.add_argument("--service-name", help="service name (default: the catalog's)")
    cost = batch.add_argument_group("estimate")
    cost.add_argument("--seconds-per-row", type=float, help="measured inference time per row (default: an assumption)")
    cost.add_argument("--dollars-per-credit", type=float, default=3.0, help="default 3")
    add_dry_run_option(batch, alias="--sql-only", what="the SQL of the run and the run_batch call")
    batch.add_argument("--yes", action="store_true", help="do not ask before running (needed without a terminal)")
    add_name_options(batch, BATCH_NAMES)
    add_session_options(batch)
    add_debug_option(batch)
    batch.set_defaults(handler=batch_command)


def _request(args: argparse.Namespace) -> BatchRequest:
    for flag, value in (("--replicas", args.replicas), ("--chunk-rows", args.chunk_rows),
                        ("--max-model-len", args.max_model_len)):
        if value is not None and value < 1:
            raise ConfigurationError(f"{flag} must be at least 1, not {value}.", fix=f"Pass {flag} 1 or more.")
    check_positive(args, "--timeout", "--max-tokens", "--seconds-per-row", "--dollars-per-credit")
    check_non_negative(args, "--poll-interval")
    if args.temperature is not None and not 0 <= args.temperature <= 2:
        raise ConfigurationError(f"--temperature must be 0 to 2, not {args.temperature}.",
                                 fix="Pass --temperature between 0 and 2 (the OpenAI chat range), or leave it out.")
    return BatchRequest(
        model=args.model, input_table=args.input_table, text_column=args.text_column, output_table=args.output_table,
        mode=args.mode, version=args.version, model_name=args.model_name, service_name=args.service_name,
        compute_pool=args.compute_pool, replicas=args.replicas, engine=args.engine,
        max_model_len=args.max_model_len, engine_args=tuple(args.engine_arg or ()), adapter=args.adapter,
        adapter_version=args.adapter_version, system_prompt=args.system_prompt, max_tokens=args.max_tokens,
        temperature=args.temperature, overwrite=args.overwrite, stage=args.stage,
        seconds_per_row=args.seconds_per_row, dollars_per_credit=args.dollars_per_credit,
    )


def batch_command(args: argparse.Namespace, ask: Ask | None = None) -> int:
    from spcs_llm.deploy.batch.run import RunSettings, execute

    request = _request(args)
    names = names_from(args)
    check_request(names, request)  # everything checkable without a session, before one is opened
    if args.dry_run:
        from spcs_llm.deploy.preview import batch_preview

        print(batch_preview(names, request))
        return 0
    session = session_for(args)
    plan = plan_batch_inference(session, names, request)
    print(f"{plan.spec.key} over {plan.tables.input_table} ({plan.rows:,} rows) → {plan.tables.output_table}: "
          f"{plan.mode} on {plan.pool}" + (f", engine {plan.engine}" if plan.mode == "job" else ""))
    print(plan.estimate.text())
    if not args.yes:
        confirm_billed(f"Run it ({plan.mode} on {plan.pool})?", "spcs-llm batch", ask,
                       alternative="--dry-run to print the SQL for review")
    settings = RunSettings(chunk_rows=args.chunk_rows, poll_interval_s=args.poll_interval, timeout_s=args.timeout)
    result = execute(session, plan, settings, report=lambda line: print(line, file=sys.stderr))
    print(result.text())
    print(f"Read the answers: {reply_query(plan)}")
    return 1 if result.rows_failed else 0
