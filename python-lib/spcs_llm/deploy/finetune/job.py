"""LoRA fine-tuning of a catalog chat model as a Snowflake ML job on a GPU pool.

``plan_finetune`` checks everything it can before any Snowflake call (a chat model with its own chat template,
the LoRA settings, identifiers and stage paths), ``check_finetune`` then checks in Snowflake the pool (a GPU
family, priced) and every training pair (``account_checks.py``), so that ``cost_line`` can say what the job will
bill before ``submit_checked`` submits ``job_main.py`` with ``snowflake.ml.jobs.submit_file`` (snowflake-ml 2.6
``jobs/manager.py``), shipping the ``spcs_llm`` package beside it through the ``imports`` option. ``submit_file``
rather than ``remote``: the entry script also runs locally as plain Python, and its arguments are plain text the
job's log shows.
``wait_for_finetune`` waits with ``MLJob.wait`` and reads the training report with ``MLJob.result()`` (both
``jobs/job.py``); a failed job raises with the tail of ``MLJob.get_logs()``.
"""

from __future__ import annotations

import importlib.util
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError, DeploymentError, DeploymentTimeoutError, ServiceFailedError
from spcs_llm.deploy.dependencies import LORA_INSTALL_HINT, require, sql_error_type
from spcs_llm.deploy.finetune.account_checks import check_pool, check_stage_file, check_table
from spcs_llm.deploy.finetune.training import LoraSettings
from spcs_llm.deploy.finetune.training_data import (
    TrainingColumns,
    check_file_name,
)
from spcs_llm.deploy.names import IDENTIFIER_PATTERN, DeploymentNames
from spcs_llm.deploy.services.catalog import CATALOG, ModelSpec
from spcs_llm.deploy.services.pools import MINIMUM_BILLED_SECS

ENTRY_SCRIPT = Path(__file__).with_name("job_main.py")
PACKAGE_DIR = Path(__file__).resolve().parents[2]  # python-lib/spcs_llm, shipped whole as the job's import
PAYLOAD_STAGE = "SPCS_LLM_JOBS"  # where snowflake.ml.jobs uploads the job payload (created if missing)
ADAPTER_STAGE = "SPCS_LLM_ADAPTERS"  # default home of trained adapters
# Installed in the job through the egress integration: peft is not known to be in the ML runtime image (inferred);
# jinja2 is imported by the spcs_llm.deploy package itself (its SQL templates).
JOB_REQUIREMENTS = ("peft>=0.10", "jinja2")
# A job without external access ships these from this machine instead, beside spcs_llm through ``imports``: its
# start-up script runs `pip install -r requirements.txt` under `set -e` whenever pip_requirements were given, which
# fails with no package index to reach (snowflake-ml 2.6 jobs/_utils/scripts/startup.sh). All three are pure Python
# (markupsafe falls back to its _native module where the zipped C speed-up does not load).
OFFLINE_VENDORED = ("peft", "jinja2", "markupsafe")
LOG_TAIL_LINES = 20
REPORT_KEYS = {"adapter_location", "base_model", "losses", "examples", "seconds"}  # job_main.run's report
_OBJECT = IDENTIFIER_PATTERN
_TABLE = re.compile(rf"^{_OBJECT}(\.{_OBJECT}){{0,2}}$")
_STAGE_PATH = re.compile(rf"^@(?P<stage>{_OBJECT}(\.{_OBJECT}){{0,2}})(?P<path>(/[A-Za-z0-9_.\-]+)*)/?$")


@dataclass(frozen=True)
class TrainingSource:
    """Where the pairs are: a table (``DB.SCHEMA.TABLE`` or a name in the deployment schema) or a JSONL / CSV
    file on a stage (``@STAGE/path/pairs.jsonl``), and which columns hold what."""

    table: str | None = None
    stage_file: str | None = None
    columns: TrainingColumns = TrainingColumns()

    def __post_init__(self) -> None:
        if (self.table is None) == (self.stage_file is None):
            raise ConfigurationError("Give the training pairs as exactly one of a table or a stage file.",
                                     fix="Pass --table DB.SCHEMA.TABLE or --stage-file @STAGE/pairs.jsonl.")
        if self.table is not None and not _TABLE.match(self.table):
            raise ConfigurationError(f"{self.table!r} is not a table name.",
                                     fix="Pass --table as TABLE, SCHEMA.TABLE or DB.SCHEMA.TABLE (plain identifiers).")
        if self.stage_file is not None:
            stage_path(self.stage_file, "--stage-file")
            check_file_name(self.stage_file)


@dataclass(frozen=True)
class FinetunePlan:
    """Everything decided before connecting: the model, where things go, and the job's arguments."""

    spec: ModelSpec
    source: TrainingSource
    settings: LoraSettings
    compute_pool: str
    job_name: str
    payload_stage: str
    output_location: str
    base_model: str


@dataclass(frozen=True)
class CheckedFinetune:
    """A plan checked against the account, ready to submit: the pairs counted and the pool priced."""

    plan: FinetunePlan
    examples: int
    input_column: str | None
    instance_family: str | None
    credits_per_hour: float | None

    @property
    def compute_pool(self) -> str:
        return self.plan.compute_pool

    @property
    def spec(self) -> ModelSpec:
        return self.plan.spec

    @property
    def settings(self) -> LoraSettings:
        return self.plan.settings


@dataclass
class FinetuneJob:
    """A submitted fine-tuning job: its id, where the adapter will land, and what its pool bills per hour."""

    job_id: str
    adapter_location: str | None  # None for a job attached by id: its report says where the adapter went
    compute_pool: str | None
    instance_family: str | None
    credits_per_hour: float | None
    examples: int | None
    handle: Any = field(repr=False, compare=False)  # snowflake.ml.jobs.MLJob
    spec: ModelSpec | None = field(default=None, repr=False)
    settings: LoraSettings | None = field(default=None, repr=False)
    submitted_at: float | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class FinetuneOutcome:
    """A finished job's report: the loss of every step, the adapter's stage folder, time and credits."""

    job_id: str
    adapter_location: str
    base_model: str  # the Hub id or stage folder the job trained over
    losses: tuple[float, ...]
    examples: int
    training_seconds: float
    elapsed_seconds: float | None
    credits: float | None


def stage_path(location: str, option: str) -> tuple[str, str]:
    """``@DB.SCHEMA.STAGE/a/b`` → (stage, "/a/b"); anything else is refused naming ``option``."""
    match = _STAGE_PATH.match(location.strip())
    if not match:
        raise ConfigurationError(f"{option} {location!r} is not a stage path.",
                                 fix=f"Pass {option} like @DB.SCHEMA.STAGE/folder (plain identifiers, no spaces).")
    return match["stage"].upper(), match["path"]


def qualified_stage(location: str, names: DeploymentNames, option: str) -> str:
    stage, path = stage_path(location, option)
    return f"@{names.qualify(stage)}{path}"


def chat_model(key: str) -> ModelSpec:
    """A catalog chat model that carries its own chat template (the pairs are rendered with it)."""
    spec = CATALOG.get(key.strip().lower())
    chat_keys = ", ".join(k for k, s in CATALOG.items() if s.kind == "chat" and not s.attach_chat_template)
    if spec is None or spec.kind != "chat":
        raise ConfigurationError(f"{key!r} is not a catalog chat model.", fix=f"Fine-tune one of: {chat_keys}.")
    if spec.attach_chat_template:
        raise ConfigurationError(f"{spec.key} ships no chat template to render the training pairs with.",
                                 fix=f"Fine-tune a model with its own template: {chat_keys}.")
    return spec


def plan_finetune(names: DeploymentNames, base_model_key: str, source: TrainingSource,
                  output_stage: str | None = None, settings: LoraSettings = LoraSettings(), *,
                  compute_pool: str | None = None, base_model_stage: str | None = None) -> FinetunePlan:
    """Check and decide everything that needs no connection; every mistake here is a ConfigurationError."""
    spec = chat_model(base_model_key)
    pool = (compute_pool or names.gpu_pool).strip().upper()
    replace(names, gpu_pool=pool)  # validates the pool as a plain identifier
    job_name = f"FINETUNE_{spec.model_name}_{uuid.uuid4().hex[:8].upper()}"
    output = output_stage or f"@{ADAPTER_STAGE}/{job_name.lower()}"
    return FinetunePlan(
        spec=spec, source=replace(source, table=names.qualify(source.table.upper()) if source.table else None,
                                  stage_file=qualified_stage(source.stage_file, names, "--stage-file")
                                  if source.stage_file else None),
        settings=settings, compute_pool=pool, job_name=job_name,
        payload_stage=f"@{names.qualify(PAYLOAD_STAGE)}",
        output_location=qualified_stage(output, names, "--output-stage"),
        base_model=qualified_stage(base_model_stage, names, "--base-model-stage") if base_model_stage else spec.hf_id,
    )


def job_arguments(plan: FinetunePlan, input_column: str | None) -> list[str]:
    """The entry script's command line: locations and settings only, never a secret."""
    settings, columns = plan.settings, plan.source.columns
    data = ["--table", plan.source.table] if plan.source.table else ["--data-file", str(plan.source.stage_file)]
    revision = ["--revision", plan.spec.revision] if plan.spec.revision else []
    return [
        "--base-model", plan.base_model, *revision, "--output", plan.output_location, *data,
        "--instruction-column", columns.instruction, f"--input-column={input_column or ''}",
        "--output-column", columns.output, "--rank", str(settings.rank), "--alpha", str(settings.alpha),
        "--learning-rate", repr(settings.learning_rate), "--max-steps", str(settings.max_steps),
        "--batch-size", str(settings.batch_size or 0), "--seed", str(settings.seed),
        f"--system-prompt={settings.system_prompt or ''}",  # joined: a prompt starting with '-' stays a value
    ]


def check_finetune(session: Any, plan: FinetunePlan, *, allow_cpu_pool: bool = False) -> CheckedFinetune:
    """Check the pool (a priced GPU family unless allowed otherwise) and every training pair; writes nothing."""
    family, rate = check_pool(session, plan.compute_pool, allow_cpu=allow_cpu_pool)
    if plan.source.table:
        examples, input_column = check_table(session, plan.source.table, plan.source.columns)
    else:
        examples, input_column = check_stage_file(session, str(plan.source.stage_file), plan.source.columns)
    return CheckedFinetune(plan, examples, input_column, family, rate)


def output_stage_sql(plan: FinetunePlan) -> str:
    """The statement that makes sure the adapter's stage exists before the job writes to it."""
    output_stage_name, _ = stage_path(plan.output_location, "--output-stage")
    return f"CREATE STAGE IF NOT EXISTS {output_stage_name} ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE')"


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (peft would import torch)."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def offline_imports(plan: FinetunePlan) -> list[tuple[str, str]]:
    """What a job without external access ships instead of a pip install; refuses what it could not run.

    Without an egress integration the job can neither download the base model from the Hub nor install packages.
    The packages are taken from this machine (OFFLINE_VENDORED). Inferred, not checked on a live account: peft's own
    dependencies (torch, transformers, accelerate, safetensors, huggingface_hub) are in the GPU ML runtime image
    (Snowflake's Container Runtime page promises "popular machine learning and deep learning frameworks" without a
    package list), and this machine's peft version works with that image's transformers.
    """
    if not plan.base_model.startswith("@"):
        raise ConfigurationError(
            f"A job without external access cannot download {plan.base_model} from Hugging Face.",
            fix="Upload the base model's files to a stage and pass --base-model-stage @STAGE/folder, or drop "
                "--no-external-access (the job then uses the egress integration from `spcs-llm setup-sql`).")
    folders = {name: _package_dir(name) for name in OFFLINE_VENDORED}
    missing = [name for name, folder in folders.items() if folder is None]
    if missing:
        raise ConfigurationError(
            f"A job without external access cannot pip-install {', '.join(missing)}, and this machine has no copy "
            "to ship with it.",
            fix=f"Install them here ({LORA_INSTALL_HINT}) so the job carries them, or drop --no-external-access.")
    return [(str(folder), name) for name, folder in folders.items() if folder is not None]


def submit_arguments(plan: FinetunePlan, names: DeploymentNames, input_column: str | None, *,
                     external_access: bool = True) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``snowflake.ml.jobs.submit_file`` arguments but the session, decided without a connection: snowflake-ml 2.6
    jobs/manager.py submit_file(file_path, compute_pool, *, stage_name, args, target_instances, pip_requirements,
    external_access_integrations, session, **kwargs: database, schema, imports, name, ...).

    With external access the job pip-installs JOB_REQUIREMENTS; without it, it asks pip for nothing and carries
    them as imports (``offline_imports``), or is refused here, before anything is submitted."""
    options: dict[str, Any] = {}
    if plan.spec.gated and not plan.base_model.startswith("@"):
        options["spec_overrides"] = hf_token_override(names)
    imports: list[tuple[str, str]] = [(str(PACKAGE_DIR), "spcs_llm")]
    if not external_access:
        imports += offline_imports(plan)
    return (str(ENTRY_SCRIPT), plan.compute_pool), dict(
        stage_name=plan.payload_stage, args=job_arguments(plan, input_column),
        pip_requirements=list(JOB_REQUIREMENTS) if external_access else None,
        external_access_integrations=[names.external_access_integration] if external_access else None,
        database=names.database, schema=names.schema, name=plan.job_name,
        imports=imports, **options,
    )


def submit_checked(session: Any, names: DeploymentNames, checked: CheckedFinetune, *,
                   external_access: bool = True) -> FinetuneJob:
    """Submit a checked plan; returns at once (``wait_for_finetune`` waits)."""
    plan = checked.plan
    jobs = require("snowflake.ml.jobs")
    positional, keywords = submit_arguments(plan, names, checked.input_column, external_access=external_access)
    session.sql(output_stage_sql(plan)).collect()
    handle = jobs.submit_file(*positional, session=session, **keywords)
    return FinetuneJob(job_id=handle.id, adapter_location=plan.output_location, compute_pool=plan.compute_pool,
                       instance_family=checked.instance_family, credits_per_hour=checked.credits_per_hour,
                       examples=checked.examples, handle=handle, spec=plan.spec, settings=plan.settings,
                       submitted_at=time.monotonic())


def submit_finetune(session: Any, names: DeploymentNames, base_model_key: str, source: TrainingSource,
                    output_stage: str | None = None, settings: LoraSettings = LoraSettings(), *,
                    compute_pool: str | None = None, base_model_stage: str | None = None,
                    allow_cpu_pool: bool = False, external_access: bool = True) -> FinetuneJob:
    """Plan, check and submit in one call (no cost shown first: ``check_finetune`` + ``cost_line`` do that)."""
    plan = plan_finetune(names, base_model_key, source, output_stage, settings, compute_pool=compute_pool,
                         base_model_stage=base_model_stage)
    checked = check_finetune(session, plan, allow_cpu_pool=allow_cpu_pool)
    return submit_checked(session, names, checked, external_access=external_access)


def hf_token_override(names: DeploymentNames) -> dict[str, Any]:
    """The job container reads the Hub token from the deployment's SECRET as HF_TOKEN; the value never passes
    through this process. snowflake-ml job_definition.py allows ``secrets`` in a container override; the entry
    shape is the SPCS service-spec ``secrets`` field (inferred: not exercised against a live account)."""
    return {"spec": {"containers": [{"name": "main", "secrets": [
        {"snowflakeSecret": {"objectName": names.hf_secret_fqn}, "secretKeyRef": "secret_string",
         "envVarName": "HF_TOKEN"}]}]}}


def attach_finetune(session: Any, job_id: str) -> FinetuneJob:
    """A job submitted earlier (``spcs-llm finetune --no-wait`` printed its id), to wait for or read."""
    jobs = require("snowflake.ml.jobs")
    try:
        handle = jobs.get_job(job_id, session=session)
    except (sql_error_type(), ValueError):  # ValueError: not a DB.SCHEMA.NAME id (snowflake-ml jobs/manager.py get_job)
        raise ConfigurationError(f"There is no fine-tuning job {job_id}.",
                                 fix="Pass the job id `spcs-llm finetune` printed (DB.SCHEMA.NAME).") from None
    return FinetuneJob(job_id=handle.id, adapter_location=None, compute_pool=None, instance_family=None,
                       credits_per_hour=None, examples=None, handle=handle)


def wait_for_finetune(job: FinetuneJob, timeout: float = -1.0) -> FinetuneOutcome:
    """Block until the job ends (``timeout`` seconds, negative: no limit) and return its training report."""
    terminal = require("snowflake.ml.jobs.job").TERMINAL_JOB_STATUSES
    started = time.monotonic()
    status = ""
    while status not in terminal:
        remaining = -1.0 if timeout < 0 else max(timeout - (time.monotonic() - started), 0.0)
        try:
            status = job.handle.wait(remaining)
        except TimeoutError:
            raise DeploymentTimeoutError(
                f"Fine-tuning job {job.job_id} is still running after {timeout:.0f} s.",
                fix=f"Wait again with `spcs-llm finetune --attach {job.job_id}`.") from None
        if timeout >= 0 and status not in terminal and time.monotonic() - started >= timeout:
            raise DeploymentTimeoutError(f"Fine-tuning job {job.job_id} is {status} after {timeout:.0f} s.",
                                         fix=f"Wait again with `spcs-llm finetune --attach {job.job_id}`.")
    if status != "DONE":
        try:
            logs = job.handle.get_logs(limit=LOG_TAIL_LINES)
        except (RuntimeError, sql_error_type()):  # no log kept (snowflake-ml jobs/job.py _get_logs raises RuntimeError)
            logs = ""
        tail = " | ".join(line for line in logs.splitlines()[-5:] if line.strip())
        raise ServiceFailedError(f"Fine-tuning job {job.job_id} ended {status}: {tail or 'no log lines'}", logs=logs,
                                 fix="Read the job's log (shown with this error), fix the data or settings, then "
                                     "submit again.")
    report = job.handle.result()
    if not isinstance(report, dict) or not REPORT_KEYS <= set(report):
        raise DeploymentError(f"Fine-tuning job {job.job_id} finished without a training report.",
                              fix="Read its log with snowflake.ml.jobs.get_job(job_id).get_logs(); the entry script "
                                  "the job ran may not be spcs_llm's.")
    elapsed = None if job.submitted_at is None else time.monotonic() - job.submitted_at
    billed = elapsed if elapsed is not None else float(report["seconds"])
    credits = None if job.credits_per_hour is None else job.credits_per_hour * max(billed, MINIMUM_BILLED_SECS) / 3600
    return FinetuneOutcome(job_id=job.job_id, adapter_location=str(report["adapter_location"]),
                           base_model=str(report["base_model"]),
                           losses=tuple(float(loss) for loss in report["losses"]), examples=int(report["examples"]),
                           training_seconds=float(report["seconds"]), elapsed_seconds=elapsed, credits=credits)
