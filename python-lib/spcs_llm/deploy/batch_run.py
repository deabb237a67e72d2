"""Running a bulk inference plan: the service-function path and the ``run_batch`` job path.

The rule for failing rows, on both paths: every input row ends up in the output table, with its RESPONSE or with
its own ERROR.

* Service path: a service function that fails on one row fails the whole ``INSERT … SELECT`` (inferred: Snowflake
  runs a statement atomically and a function error aborts it; the stricter reading). Rows are therefore scored in
  chunks; a failing chunk is split in halves until the failing row is alone, and that row is written with the
  error. After ``max_failed_rows`` failures the run stops and the rows not yet scored get an error saying so.
* Job path: what the job does with a row its model fails on is not documented for snowml 2.6 (inferred: the row
  may be missing from the output, or the whole job may fail). After the job ends — DONE or not — its results are
  loaded and every input row missing from them gets an error naming the job and its final state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import DeploymentError
from ..redaction import get_logger, redact
from .batch import BatchPlan

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


def _sql_error_type() -> type[Exception]:
    from snowflake.snowpark.exceptions import SnowparkSQLException

    return SnowparkSQLException


def job_arguments(plan: BatchPlan) -> dict[str, Any]:
    """The ``ModelVersion.run_batch`` keyword arguments (``_client/model/model_version_impl.py``; specs from
    ``snowflake.ml.model.batch_inference``). The engine goes in ``inference_spec.engine_options``; an adapter is
    attached under its alias (``inference_spec.adapters``) and chosen per row with ``input_spec.params["model"]``."""
    from snowflake.ml.model.batch_inference import (
        EngineOptions,
        InferenceSpec,
        InputSpec,
        OutputSpec,
        ResourcesSpec,
        SaveMode,
    )

    engine = (EngineOptions(engine="vllm", engine_args_override=list(plan.spec.vllm_args or []))
              if plan.engine == "vllm" else None)
    adapters = {plan.request.adapter: plan.adapter_version} if plan.request.adapter else None
    schema = plan.tables.output_table.rsplit(".", 1)[0]
    return {
        "input_stage_location": plan.locations.input_location,
        "compute_pool": plan.pool,
        # ERROR: a fresh per-run location; never overwrite results that are already there.
        "output_spec": OutputSpec(stage_location=plan.locations.output_location, mode=SaveMode.ERROR),
        "input_spec": InputSpec(params=dict(plan.params)) if plan.params else None,
        "resources_spec": ResourcesSpec(gpu_requests=str(plan.spec.gpu_count)) if plan.spec.uses_gpu else None,
        "inference_spec": InferenceSpec(engine_options=engine, adapters=adapters) if engine or adapters else None,
        "function_name": plan.target_method,
        "job_name": f"{schema}.{plan.locations.job_name}",
        "replicas": plan.request.replicas,
    }


def _execute_job_statement(plan: BatchPlan) -> str:
    """The EXECUTE INFERENCE JOB SERVICE statement run_batch sends, built by snowml's own functions
    (``_client/ops/service_ops.py`` ``build_inference_job_service_yaml``, ``_client/sql/service.py``
    ``build_execute_inference_job_service_sql``), for printing."""
    from snowflake.ml._internal.utils import sql_identifier
    from snowflake.ml.model._client.model.batch_inference_job_specs import AdapterSpec
    from snowflake.ml.model._client.ops import service_ops
    from snowflake.ml.model._client.service import inference_job_service_spec
    from snowflake.ml.model._client.sql.service import build_execute_inference_job_service_sql

    arguments = job_arguments(plan)
    inference = arguments["inference_spec"]
    if inference is not None and plan.adapter_version is not None:
        adapter = AdapterSpec(name=plan.adapter_version.fully_qualified_model_name,
                              version=plan.adapter_version.version_name, alias=plan.request.adapter)
        inference = inference.model_copy(update={"adapters": [adapter]})
    body = service_ops.build_inference_job_service_yaml(
        input_spec=inference_job_service_spec._InternalInputSpec.from_input_spec(arguments["input_spec"]),
        output_spec=service_ops.normalize_output_stage_location(arguments["output_spec"]),
        resources_spec=arguments["resources_spec"], inference_spec=inference, image_build_spec=None,
    )
    return build_execute_inference_job_service_sql(
        yaml_body=body, compute_pool_name=sql_identifier.SqlIdentifier(plan.pool),
        model_fqn=plan.model_version.fully_qualified_model_name,
        version=sql_identifier.SqlIdentifier(plan.model_version.version_name), function_name=plan.target_method,
        job_fqn=arguments["job_name"], async_=True, replicas=plan.request.replicas,
        from_source=plan.locations.input_location,
    )


def missing_row_error(job_id: str, status: str) -> str:
    if status == "DONE":
        return f"no result for this row in the output of job {job_id}"
    return (f"job {job_id} ended {status} before this row had a result; its logs: "
            f"snowflake.ml.jobs.get_job('{job_id}').get_logs()")


def job_sql(plan: BatchPlan) -> list[str]:
    locations, tables = plan.locations, plan.tables
    return [locations.create_stage(), locations.stage_input(tables, plan.model_input), _execute_job_statement(plan),
            "-- when the job is DONE (spcs-llm polls it), load its results; rows without one get an ERROR",
            locations.file_format(), locations.load_results(tables, plan.model_input),
            tables.rows_without_result(missing_row_error(job_arguments(plan)["job_name"], "DONE"))]


def _score_with_service(session: Any, plan: BatchPlan, settings: RunSettings, report: Report) -> None:
    tables, call, failures = plan.tables, plan.function_call, []
    sql_error = _sql_error_type()

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
    session.sql(locations.load_results(tables, plan.model_input)).collect()
    session.sql(tables.rows_without_result(missing_row_error(str(job.id), status))).collect()
    return str(job.id), status


def execute(session: Any, plan: BatchPlan, settings: RunSettings = RunSettings(), *, report: Report = log.info,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> BatchResult:
    """Run ``plan``: number the input, create the output table, score, then count answers and errors."""
    start = clock()
    session.sql(plan.tables.number_input()).collect()
    session.sql(plan.tables.create_output(plan.request.overwrite)).collect()
    job_id = job_status = None
    if plan.mode == "service":
        _score_with_service(session, plan, settings, report)
    else:
        job_id, job_status = _run_job(session, plan, settings, report, sleep, clock)
    summary = session.sql(plan.tables.summary()).collect()[0]
    return BatchResult(mode=plan.mode, output_table=plan.tables.output_table, rows_total=int(summary["ROWS_TOTAL"]),
                       rows_failed=int(summary["ROWS_FAILED"]), seconds=clock() - start, job_id=job_id,
                       job_status=job_status)
