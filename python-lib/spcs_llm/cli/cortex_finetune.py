"""``spcs-llm cortex-finetune``: fine-tune a Cortex model from a Snowflake table, follow the job, print the settings.

Checks every setting and the table before the job starts, prints the estimate and the SQL, then asks to go on
(``--yes`` skips the question; without a terminal it is required). ``--dry-run`` (older name ``--sql-only``) prints
the SQL instead of running it, without opening a session; ``--attach JOB_ID`` follows a running job; ``--cancel
JOB_ID`` stops one. Every argument (name, base model, columns, epochs, rates) is checked before any session.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from spcs_llm.cli.services import add_debug_option, add_dry_run_option, add_name_options, add_session_options
from spcs_llm.cli.services_run import Ask, confirm_billed, interactive, names_from, session_for
from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.deploy.cortex_finetune.job import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
    PollSettings,
    account_url,
    cancel_job,
    connection_settings_text,
    create_job,
    wait_for_job,
)
from spcs_llm.deploy.cortex_finetune.plan import (
    BASE_MODELS_AS_OF,
    DEFAULT_DOLLARS_PER_CREDIT,
    DOCS_URL,
    FINETUNE_BASE_MODELS,
    MAX_EPOCHS_LIMIT,
    FinetuneRequest,
    plan_finetune,
    validate,
)

FINETUNE_NAMES = ("database", "schema")


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "cortex-finetune", help="fine-tune a Cortex model (Llama / Mistral) from a table and print its DSS settings",
        description="Runs SNOWFLAKE.CORTEX.FINETUNE('CREATE', ...) on a table of prompt/completion examples, follows "
                    "the job to the end and prints the tuned model's name and the Snowflake Cortex chat settings to "
                    f"paste in Dataiku. Snowflake plans to retire Cortex Fine-tuning in Q1 2027 in favour of Cortex "
                    f"Training; see {DOCS_URL}.")
    command.add_argument("name", nargs="?", help="name of the tuned model (letters, digits, _), made in --database."
                                                 "--schema")
    command.add_argument("--base-model", help=f"one of {', '.join(FINETUNE_BASE_MODELS)} (as of {BASE_MODELS_AS_OF})")
    command.add_argument("--allow-unlisted-base-model", action="store_true",
                         help="accept a base model newer than the shipped list")
    data = command.add_argument_group("training data")
    data.add_argument("--training-table", help="TABLE, SCHEMA.TABLE or DATABASE.SCHEMA.TABLE")
    data.add_argument("--validation-table", help="optional; Snowflake splits the training data when left out")
    data.add_argument("--prompt-column", default="PROMPT", help="column holding the prompt (default PROMPT)")
    data.add_argument("--prompt-columns",
                      help="several columns joined by a blank line into the prompt, e.g. INSTRUCTION,INPUT")
    data.add_argument("--completion-column", default="COMPLETION",
                      help="column holding the answer (default COMPLETION)")
    data.add_argument("--max-epochs", type=int, help=f"1 to {MAX_EPOCHS_LIMIT} (default: Snowflake chooses)")
    cost = command.add_argument_group("estimate")
    cost.add_argument("--training-credits-per-million", type=float,
                      help="the base model's fine-tuning training rate from Snowflake's Service Consumption Table")
    cost.add_argument("--dollars-per-credit", type=float, default=DEFAULT_DOLLARS_PER_CREDIT, help="default 3")
    job = command.add_argument_group("the job")
    job.add_argument("--attach", metavar="JOB_ID", help="follow a job already started instead of starting one")
    job.add_argument("--cancel", metavar="JOB_ID", help="cancel a job")
    job.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL_S,
                     help=f"seconds between status checks (default {DEFAULT_POLL_INTERVAL_S:g})")
    job.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                     help=f"seconds to follow the job (default {DEFAULT_TIMEOUT_S:g}); it keeps running after")
    job.add_argument("--no-wait", action="store_true", help="start the job and print its id without following it")
    add_dry_run_option(command, alias="--sql-only", what="the FINETUNE SQL")
    command.add_argument("--yes", action="store_true", help="do not ask before running (needed without a terminal)")
    add_name_options(command, FINETUNE_NAMES)
    add_session_options(command)
    add_debug_option(command)
    command.set_defaults(handler=cortex_finetune_command)


def _request(args: argparse.Namespace) -> FinetuneRequest:
    missing = [flag for flag, value in (("NAME", args.name), ("--base-model", args.base_model),
                                        ("--training-table", args.training_table)) if not value]
    if missing:
        raise ConfigurationError(f"cortex-finetune needs {', '.join(missing)}.",
                                 fix="Pass NAME --base-model MODEL --training-table TABLE (or --attach / --cancel "
                                     "JOB_ID for a job already started).")
    prompt_columns = (tuple(part.strip() for part in args.prompt_columns.split(","))
                      if args.prompt_columns else (args.prompt_column,))
    return FinetuneRequest(name=args.name, base_model=args.base_model, training_table=args.training_table,
                           prompt_columns=prompt_columns, completion_column=args.completion_column,
                           validation_table=args.validation_table, max_epochs=args.max_epochs,
                           training_credits_per_million=args.training_credits_per_million,
                           dollars_per_credit=args.dollars_per_credit,
                           allow_unlisted_base_model=args.allow_unlisted_base_model)


def _poll_settings(args: argparse.Namespace) -> PollSettings:
    if args.poll_interval <= 0 or args.timeout <= 0:
        raise ConfigurationError("--poll-interval and --timeout must be above 0.", fix="Pass positive seconds.")
    return PollSettings(interval_s=args.poll_interval, timeout_s=args.timeout, progress_bar=sys.stderr.isatty())


def _confirm_cancel(job_id: str, ask: Ask | None) -> None:
    """Cancelling throws away the job's progress (its tokens stay billed): asked on a terminal, --yes otherwise."""
    if not interactive():
        raise ConfigurationError("Cancelling a fine-tuning job needs confirmation and there is no terminal.",
                                 fix="Add --yes to confirm.")
    if (ask or input)(f"Cancel fine-tuning job {job_id}? [y/N] ").strip().lower() not in ("y", "yes"):
        raise ConfigurationError("Cancel not confirmed; the job keeps running.", fix="Answer y, or pass --yes.")


def _progress_to_stderr(line: str) -> None:
    """Progress goes to stderr, results to stdout (a script can capture the settings alone)."""
    print(line, file=sys.stderr)


def cortex_finetune_command(args: argparse.Namespace, ask: Ask | None = None) -> int:
    if args.attach and args.cancel:
        raise ConfigurationError("--attach and --cancel cannot be used together.", fix="Pass one of them.")
    report = _progress_to_stderr
    if args.dry_run and (args.cancel or args.attach):
        from spcs_llm.deploy.preview import cortex_job_preview

        print(cortex_job_preview("CANCEL" if args.cancel else "DESCRIBE", args.cancel or args.attach))
        return 0
    if args.cancel:
        if not args.yes:
            _confirm_cancel(args.cancel, ask)
        print(cancel_job(session_for(args), args.cancel))
        return 0
    if args.attach:
        session = session_for(args)
        status = wait_for_job(session, args.attach, _poll_settings(args), report)
        if not status.model:
            raise DeploymentError(f"Fine-tuning job {args.attach} succeeded but names no model.",
                                  fix="Find the model with SHOW MODELS in the schema the job was started in.")
        print(f"Fine-tuned model: {status.model}")
        print(connection_settings_text(status.model, status.base_model, account_url(session)))
        return 0
    request = _request(args)
    poll = _poll_settings(args)
    validate(request)  # name, base model, columns, epochs and rates: refused before any session
    names = names_from(args)
    if args.dry_run:
        from spcs_llm.deploy.preview import cortex_finetune_preview

        print(cortex_finetune_preview(names, request))
        return 0
    session = session_for(args)
    plan = plan_finetune(session, names, request)
    print(f"{plan.base_model} fine-tuned on {plan.training.table} ({plan.training.rows:,} rows"
          + (f", {plan.training.incomplete_rows:,} without prompt or completion left out"
             if plan.training.incomplete_rows else "")
          + f") → {plan.model_fqn}"
          + (f", validated on {plan.validation.table} ({plan.validation.rows:,} rows)" if plan.validation else ""))
    print(plan.estimate.text())
    print(plan.create_sql() + ";")
    if not args.yes:
        confirm_billed(f"Start fine-tuning {plan.model_fqn} on {plan.base_model}?", "spcs-llm cortex-finetune", ask,
                       alternative="--dry-run to print the SQL for review")
    job_id = create_job(session, plan)
    print(f"Fine-tuning job started: {job_id}")
    if args.no_wait:
        print(f"Follow it with: spcs-llm cortex-finetune --attach {job_id}")
        return 0
    status = wait_for_job(session, job_id, poll, report)
    model = status.model or plan.model_fqn
    print(f"Fine-tuned model: {model}")
    print(connection_settings_text(model, plan.base_model, account_url(session)))
    return 0
