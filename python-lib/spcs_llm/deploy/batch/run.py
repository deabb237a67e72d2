"""Running a bulk inference plan: the service-function path and the ``run_batch`` job path.

The rule for failing rows, on both paths: every input row ends up in the output table, with its RESPONSE or with
its own ERROR.

* Service path: a service function that fails on one row fails the whole ``INSERT … SELECT`` (inferred: Snowflake
  runs a statement atomically and a function error aborts it; the stricter reading). Rows are therefore scored in
  chunks; a failing chunk is split in halves until the failing row is alone, and that row is written with the
  error. After ``max_failed_rows`` failures the run stops and the rows not yet scored get an error saying so.
* Job path: the staged input carries ROW_ID explicitly, and the job's output rows pass the input columns through
  (Snowflake's registry tests, see ``JobLocations.load_results``); results are loaded only when every result row
  carries its ROW_ID (``_check_results``), otherwise the run stops naming where the results are. What the job
  does with a row its model fails on is not documented for snowml 2.6 (inferred: the row may be missing from the
  output, or the whole job may fail). After the job ends — DONE or not — its results are
  loaded and every input row missing from them gets an error naming the job and its final state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import DeploymentError
from spcs_llm.core.redaction import get_logger, redact
from spcs_llm.deploy.batch.job_spec import job_arguments, missing_row_error, missing_row_id_error
from spcs_llm.deploy.batch.plan import BatchPlan, BatchRequest, plan_batch_inference
from spcs_llm.deploy.batch.sql import RESULT_ROWS, ROWS_WITH_ROW_ID
from spcs_llm.deploy.dependencies import sql_error_type
from spcs_llm.deploy.names import DeploymentNames

log = get_logger(__name__)
Report = Callable[[str], None]
TERMINAL_JOB_STATES = ("DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR", "DELETED")  # snowml jobs/_utils/type_utils.py


@dataclass(frozen=True)
class RunSettings:
    chunk_rows: int = 1000
    max_failed_rows: int = 100
    poll_interval_s: float = 30.0
    timeout_s: float = 24 * 3600.0


@dataclass(frozen=True)
class BatchResult:
    mode: str
    output_table: str
    rows_total: int
    rows_failed: int
    seconds: float
    job_id: str | None = None
    job_status: str | None = None

    @property
    def seconds_per_row(self) -> float:
        return self.seconds / max(self.rows_total, 1)

    def text(self) -> str:
        job = f" Job {self.job_id} ended {self.job_status}." if self.job_id else ""
        failed = (f" {self.rows_failed:,} row(s) have an ERROR instead of a RESPONSE: SELECT ROW_ID, ERROR FROM "
                  f"{self.output_table} WHERE ERROR IS NOT NULL;") if self.rows_failed else ""
        return (f"{self.rows_total:,} rows written to {self.output_table} in {self.seconds:.0f} s "
                f"(measured {self.seconds_per_row:.3g} s/row, including start-up: give it as the seconds per row "
                f"of the next estimate).{job}{failed}")



def _score_with_service(session: Any, plan: BatchPlan, settings: RunSettings, report: Report) -> None:
    tables, call = plan.tables, plan.function_call
    failures: list[int] = []  # the ROW_IDs that failed on their own
    sql_error = sql_error_type()

    def score(first: int, last: int) -> None:
        if len(failures) >= settings.max_failed_rows:
            return
        try:
            session.sql(tables.service_insert(call, first, last)).collect()
        except sql_error as exc:
            if first == last:
                failures.append(first)
                session.sql(tables.error_row(first, redact(str(exc)))).collect()
                return
            middle = (first + last) // 2
            score(first, middle)
            score(middle + 1, last)

    for first in range(1, plan.rows + 1, settings.chunk_rows):
        last = min(first + settings.chunk_rows - 1, plan.rows)
        score(first, last)
        report(f"{last:,}/{plan.rows:,} rows scored, {len(failures)} failed")
        if len(failures) >= settings.max_failed_rows:
            session.sql(tables.rows_without_result(
                f"not scored: the run stopped after {len(failures)} failing rows")).collect()
            report(f"Stopped after {len(failures)} failing rows; the rest are marked in ERROR.")
            return


def _wait_for_job(job: Any, settings: RunSettings, report: Report, sleep: Callable[[float], None],
                  clock: Callable[[], float]) -> str:
    """Poll ``MLJob.status`` (``snowflake/ml/jobs/job.py``); rows done are not reported by the job, so progress is
    its state and the elapsed time."""
    start = clock()
    while (status := str(job.status)) not in TERMINAL_JOB_STATES:
        elapsed = clock() - start
        if elapsed > settings.timeout_s:
            raise DeploymentError(
                f"Batch job {job.id} is still {status} after {elapsed / 60:.0f} min; it keeps running.",
                fix=f"Check it later with snowflake.ml.jobs.get_job('{job.id}').status, then load its results with "
                    "the SQL that `spcs-llm batch --dry-run` prints.")
        report(f"job {job.id}: {status}, {elapsed / 60:.1f} min elapsed")
        sleep(settings.poll_interval_s)
    report(f"job {job.id}: {status} after {(clock() - start) / 60:.1f} min")
    return status


def _check_results(session: Any, plan: BatchPlan, job_id: str) -> None:
    """Every result row carries the ROW_ID the staged input gave it, or nothing is loaded: each input row gets an
    error saying where the results are, and the run stops with the fix."""
    (row,) = session.sql(plan.locations.check_results()).collect()
    result_rows, with_row_id = int(row[RESULT_ROWS]), int(row[ROWS_WITH_ROW_ID])
    if with_row_id == result_rows:
        return
    location = plan.locations.results_location
    session.sql(plan.tables.rows_without_result(missing_row_id_error(job_id, location))).collect()
    raise DeploymentError(
        f"Batch job {job_id} wrote {result_rows:,} result rows, {result_rows - with_row_id:,} of them without the "
        f"ROW_ID column of the staged input, so they cannot be matched to the input rows (every row of "
        f"{plan.tables.output_table} says so).",
        fix=f"The results are kept at {location}: read them with SELECT $1 FROM {location} (FILE_FORMAT => "
            "'<a Parquet file format>'). This snowflake-ml version no longer passes input columns through; run the "
            "batch with the snowflake-ml versions in notebooks/requirements.txt, or use --mode service.")


def _run_job(session: Any, plan: BatchPlan, settings: RunSettings, report: Report, sleep: Callable[[float], None],
             clock: Callable[[], float]) -> tuple[str, str]:
    locations, tables = plan.locations, plan.tables
    session.sql(locations.create_stage()).collect()
    session.sql(locations.stage_input(tables, plan.model_input)).collect()
    try:
        job = plan.model_version.run_batch(**job_arguments(plan))
    except Exception as exc:  # noqa: BLE001 - snowml raises ValueError and SQL errors alike; keep its message
        raise DeploymentError(f"run_batch was refused: {redact(str(exc))}",
                              fix="Correct what the message names (pool, model, adapter), then run again.") from None
    status = _wait_for_job(job, settings, report, sleep, clock)
    session.sql(locations.file_format()).collect()
    _check_results(session, plan, str(job.id))
    session.sql(locations.load_results(tables, plan.model_input)).collect()
    session.sql(tables.rows_without_result(missing_row_error(str(job.id), status))).collect()
    return str(job.id), status


def score_numbered(session: Any, plan: BatchPlan, settings: RunSettings = RunSettings(), *, report: Report = log.info,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> tuple[str | None, str | None]:
    """Score input that is already numbered into an output table that already exists, by the plan's path (the
    service function, or a ``run_batch`` job); the job's id and final status, or ``(None, None)`` on the service.
    The Flow recipe numbers its prompts itself, so it calls this rather than ``execute``."""
    if plan.mode == "service":
        _score_with_service(session, plan, settings, report)
        return None, None
    return _run_job(session, plan, settings, report, sleep, clock)


def execute(session: Any, plan: BatchPlan, settings: RunSettings = RunSettings(), *, report: Report = log.info,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> BatchResult:
    """Run ``plan``: number the input, create the output table, score, then count answers and errors."""
    start = clock()
    session.sql(plan.tables.number_input()).collect()
    session.sql(plan.tables.create_output(plan.request.overwrite)).collect()
    job_id, job_status = score_numbered(session, plan, settings, report=report, sleep=sleep, clock=clock)
    summary = session.sql(plan.tables.summary()).collect()[0]
    return BatchResult(mode=plan.mode, output_table=plan.tables.output_table, rows_total=int(summary["ROWS_TOTAL"]),
                       rows_failed=int(summary["ROWS_FAILED"]), seconds=clock() - start, job_id=job_id,
                       job_status=job_status)


def run_batch_inference(session: Any, names: DeploymentNames, request: BatchRequest, **run_options: Any) -> Any:
    """Plan and run in one call (no confirmation; print ``plan.estimate.text()`` first when a person is watching).
    ``run_options`` go to ``execute`` (settings, report, sleep, clock)."""
    return execute(session, plan_batch_inference(session, names, request), **run_options)
