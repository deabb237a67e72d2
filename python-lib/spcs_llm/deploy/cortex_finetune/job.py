"""A Cortex fine-tuning job once started: create it, follow ``FINETUNE('DESCRIBE')`` to a final state, cancel it,
and the Cortex chat settings that serve the tuned model in Dataiku.

The job's statements are one-cell SELECTs of ``SNOWFLAKE.CORTEX.FINETUNE(...)``, as snowflake-ml 2.6 sends them
(snowflake/cortex/_finetune.py ``Finetune.create`` / ``FinetuneJob.describe`` / ``FinetuneJob.cancel`` through
``_util.call_sql_function_literals``); CREATE's arguments in the form its reference page documents
(``FinetunePlan.create_sql``), after ``USE SCHEMA``. CREATE answers the job id, DESCRIBE a JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from spcs_llm.core.errors import DeploymentError
from spcs_llm.cortex.cost import CORTEX_CREDITS_PER_MILLION, CORTEX_RATES_AS_OF
from spcs_llm.deploy.batch.sql import literal
from spcs_llm.deploy.cortex_finetune.plan import DOCS_URL, FinetunePlan

TERMINAL_STATES = ("SUCCESS", "ERROR", "CANCELLED")
DEFAULT_POLL_INTERVAL_S = 60.0
DEFAULT_TIMEOUT_S = 48 * 3600.0
Report = Callable[[str], None]


@dataclass(frozen=True)
class JobStatus:
    """One DESCRIBE answer (fields as snowflake-ml 2.6 ``FinetuneStatus`` names them)."""

    job_id: str
    status: str
    base_model: str = ""
    progress: float | None = None
    trained_tokens: int | None = None
    model: str | None = None
    error: dict[str, Any] = field(default_factory=dict)
    training_result: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{self.job_id}: {self.status}"]
        if self.progress is not None:
            parts.append(f"{self.progress:.0%}")
        if self.trained_tokens:
            parts.append(f"{self.trained_tokens:,} tokens trained")
        return ", ".join(parts)


@dataclass(frozen=True)
class PollSettings:
    interval_s: float = DEFAULT_POLL_INTERVAL_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    progress_bar: bool = False
    sleep: Callable[[float], None] | None = None  # time.sleep, looked up when called
    clock: Callable[[], float] | None = None  # time.monotonic, likewise


def _finetune(session: Any, operation: str, job_id: str) -> str:
    statement = f"SELECT SNOWFLAKE.CORTEX.FINETUNE({literal(operation)}, {literal(job_id)})"
    try:
        return str(session.sql(statement).collect()[0][0])
    except Exception as exc:  # noqa: BLE001 - Snowpark raises its SQL error; its message is the server's
        raise DeploymentError(f"FINETUNE('{operation}') of job {job_id} failed: {exc}",
                              fix="Check the job id with SELECT SNOWFLAKE.CORTEX.FINETUNE('SHOW'), and that your role "
                                  "is the one that started the job.") from None


def create_job(session: Any, plan: FinetunePlan) -> str:
    """Start the job in the plan's schema; a refusal carries the server's message and the grants it usually means."""
    try:
        session.sql(plan.use_schema_sql()).collect()
        return str(session.sql(plan.create_sql()).collect()[0][0])
    except Exception as exc:  # noqa: BLE001 - Snowpark raises its SQL error; its message is the server's
        raise DeploymentError(
            f"Snowflake refused the fine-tuning job: {exc}",
            fix=f"Your role needs CREATE MODEL on schema {plan.model_fqn.rsplit('.', 1)[0]}, SELECT on the training "
                f"table and the SNOWFLAKE.CORTEX_USER database role; see {DOCS_URL}.") from None


def describe_job(session: Any, job_id: str) -> JobStatus:
    answer = _finetune(session, "DESCRIBE", job_id)
    try:
        data = json.loads(answer)
    except json.JSONDecodeError:
        raise DeploymentError(f"Fine-tuning job {job_id} cannot be described: {answer[:300]}",
                              fix="Check the job id with SELECT SNOWFLAKE.CORTEX.FINETUNE('SHOW').") from None
    return JobStatus(job_id=str(data.get("id") or job_id), status=str(data.get("status", "")).upper(),
                     base_model=str(data.get("base_model") or ""),
                     progress=data.get("progress"), trained_tokens=data.get("trained_tokens"),
                     model=data.get("model"), error=data.get("error") or {},
                     training_result=data.get("training_result") or [])


def cancel_job(session: Any, job_id: str) -> str:
    """Cancel; Snowflake answers 'Canceled Cortex Fine-tuning job: <id>' (what snowflake-ml's cancel checks for)."""
    answer = _finetune(session, "CANCEL", job_id)
    if not answer.startswith("Canceled Cortex Fine-tuning job"):
        raise DeploymentError(f"Fine-tuning job {job_id} was not cancelled: {answer[:300]}",
                              fix="Check its state with spcs-llm cortex-finetune --attach " + job_id + ".")
    return answer


def wait_for_job(session: Any, job_id: str, settings: PollSettings, report: Report) -> JobStatus:
    """Poll DESCRIBE until SUCCESS, ERROR or CANCELLED; a line each time the state or progress changes."""
    bar = _progress_bar(job_id) if settings.progress_bar else None
    sleep, clock = settings.sleep or time.sleep, settings.clock or time.monotonic
    started, last_line = clock(), ""
    try:
        while True:
            status = describe_job(session, job_id)
            if status.line() != last_line:
                last_line = status.line()
                report(last_line)
            if bar is not None and status.progress is not None:
                bar.n = round(status.progress * 100)
                bar.refresh()
            if status.status in TERMINAL_STATES:
                return _final(_qualified(session, status))
            if clock() - started > settings.timeout_s:
                raise DeploymentError(
                    f"Fine-tuning job {job_id} still {status.status} after {settings.timeout_s:.0f} s.",
                    fix=f"It keeps running in Snowflake: follow it later with --attach {job_id}, or stop it with "
                        f"--cancel {job_id}.")
            sleep(settings.interval_s)
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(job_id: str) -> Any:
    from spcs_llm.deploy.dependencies import require

    return require("tqdm.auto").tqdm(total=100, desc=job_id, unit="%", file=sys.stderr)


def _qualified(session: Any, status: JobStatus) -> JobStatus:
    """DESCRIBE's ``model`` as DB.SCHEMA.NAME. snowflake-ml's unit test records a qualified one
    (snowflake/cortex/finetune_test.py: "CFT_DB.TASTY_EMAIL.test_api_1"), the DESCRIBE reference page a plain one
    ("my_tuned_model"). Inferred: a plain name lives in the session's current schema, the one create_job set (an
    --attach session starts in the deployment schema too)."""
    if not status.model or "." in status.model:
        return status
    database = str(session.get_current_database() or "").strip('"')
    schema = str(session.get_current_schema() or "").strip('"')
    if not database or not schema:
        return status
    return replace(status, model=f"{database}.{schema}.{status.model}")


def _final(status: JobStatus) -> JobStatus:
    if status.status == "SUCCESS":
        return status
    if status.status == "CANCELLED":
        raise DeploymentError(f"Fine-tuning job {status.job_id} was cancelled; no model was made.",
                              fix="Start a new job with spcs-llm cortex-finetune.")
    message = str(status.error.get("message") or status.error or "no message")
    raise DeploymentError(f"Fine-tuning job {status.job_id} failed: {message}", fix=_fix_for(message))


def _fix_for(message: str) -> str:
    lowered = message.lower()
    if "privilege" in lowered or "not authorized" in lowered or "access" in lowered:
        return ("Grant your role CREATE MODEL on the target schema, SELECT on the tables and the "
                f"SNOWFLAKE.CORTEX_USER database role, then run again; see {DOCS_URL}.")
    if "context" in lowered or "too long" in lowered or "token" in lowered:
        return "Shorten the prompts/completions that exceed the base model's context window, then run again."
    return f"Fix the cause above in the training data or settings, then run again; see {DOCS_URL}."


def connection_settings_text(model_fqn: str, base_model: str, account_url: str | None) -> str:
    """The Snowflake Cortex chat model settings to paste in Dataiku for the tuned model."""
    rate = CORTEX_CREDITS_PER_MILLION.get(base_model)
    if rate is None:
        credits = ("Input / Output credits per million tokens: set them from Snowflake's Service Consumption Table "
                   "(fine-tuned models are not in the plugin's rate table; left empty, cost shows as unknown)")
    else:
        # Inferred: a fine-tuned model is billed at its base model's inference rate; check the consumption table.
        credits = (f"Input / Output credits per million tokens: {rate[0]:g} / {rate[1]:g} (the {base_model} rate in "
                   f"the plugin's table as of {CORTEX_RATES_AS_OF}; fine-tuned models are not in the table, so set "
                   "them here, after checking Snowflake's Service Consumption Table)")
    # Inferred: callers of a tuned model need USAGE on it, like other schema-level models.
    return "\n".join([
        "Dataiku: Administration > Connections > (your LLM Mesh connection) > Snowflake Cortex chat model:",
        "  Authentication: Per-user Snowflake OAuth or Service account, with your preset",
        f"  Snowflake account URL (account_url): {account_url or 'your https://<account>.snowflakecomputing.com'}",
        f"  Model (model): {model_fqn}",
        "  Tool calling (tool_calling): Not supported (Llama and Mistral base models cannot call tools)",
        f"  {credits}",
        "The calling role needs the SNOWFLAKE.CORTEX_USER database role and USAGE on the model "
        f"(GRANT USAGE ON MODEL {model_fqn} TO ROLE <role>).",
    ])


def account_url(session: Any) -> str | None:
    """https://<host> of the session's connection, when the session has one."""
    host = getattr(getattr(session, "connection", None), "host", None)
    return f"https://{host}" if host else None
