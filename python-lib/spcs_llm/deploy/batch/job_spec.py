"""A batch inference job as snowflake-ml runs it: ``ModelVersion.run_batch``'s arguments and the SQL it sends,
for running and for printing. Imports snowflake-ml only inside its functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
