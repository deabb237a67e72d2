"""The statements of a bulk inference run: ``ModelVersion.run_batch``'s arguments and the SQL it sends, and the
whole run as a SQL worksheet, for running and for printing. Imports snowflake-ml only inside its functions."""

from __future__ import annotations

from typing import Any

from spcs_llm.deploy.batch.plan import BatchPlan


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
    """The EXECUTE INFERENCE JOB SERVICE statement run_batch sends, for printing (built by snowml's own private
    functions, isolated in ``spcs_llm.deploy.snowml_private``)."""
    from spcs_llm.deploy import snowml_private

    adapter = None
    if plan.adapter_version is not None and plan.request.adapter:
        adapter = (plan.adapter_version.fully_qualified_model_name, plan.adapter_version.version_name,
                   plan.request.adapter)
    return snowml_private.execute_inference_job_sql(
        arguments=job_arguments(plan), pool=plan.pool, model_fqn=plan.model_version.fully_qualified_model_name,
        version_name=plan.model_version.version_name, adapter=adapter)


def missing_row_id_error(job_id: str, results_location: str) -> str:
    return (f"the output of job {job_id} has no ROW_ID column, so its results cannot be matched to the input rows; "
            f"they are left at {results_location}")


def missing_row_error(job_id: str, status: str) -> str:
    if status == "DONE":
        return f"no result for this row in the output of job {job_id}"
    return (f"job {job_id} ended {status} before this row had a result; its logs: "
            f"snowflake.ml.jobs.get_job('{job_id}').get_logs()")


def job_sql(plan: BatchPlan) -> list[str]:
    locations, tables = plan.locations, plan.tables
    return [locations.create_stage(), locations.stage_input(tables, plan.model_input), _execute_job_statement(plan),
            "-- when the job is DONE (spcs-llm polls it), load its results; rows without one get an ERROR",
            locations.file_format(),
            "-- every result row must carry the ROW_ID of the staged input (RESULT_ROWS = ROWS_WITH_ROW_ID)",
            locations.check_results(), locations.load_results(tables, plan.model_input),
            tables.rows_without_result(missing_row_error(job_arguments(plan)["job_name"], "DONE"))]


def plan_sql(plan: BatchPlan) -> str:
    """The statements of this run for a SQL worksheet, in order."""
    tables, overwrite = plan.tables, plan.request.overwrite
    lines = [f"-- {plan.mode} run of {plan.spec.key} over {tables.input_table} ({plan.rows:,} rows)",
             tables.number_input() + ";", tables.create_output(overwrite) + ";"]
    if plan.mode == "service":
        lines.append("-- spcs-llm runs this in chunks of rows and isolates failing rows, each with its own ERROR")
        lines.append(tables.service_insert(plan.function_call) + ";")
    else:
        lines += [statement if statement.startswith("--") else statement + ";" for statement in job_sql(plan)]
    lines.append(tables.summary() + ";")
    return "\n".join(lines)
