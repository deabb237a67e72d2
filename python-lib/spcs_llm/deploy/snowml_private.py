"""Every private snowflake-ml API the deployment library uses, and nothing else.

snowflake-ml-python 2.6 has no public equivalent for these (its public surface is ``snowflake.ml.registry``,
``snowflake.ml.model`` with ``batch_inference``, ``models``, ``openai_signatures``, and ``snowflake.ml.jobs``).
Each is imported here only, by ``_private``, which names the missing function when an upgrade moves one;
``tests/unit/deploy/test_snowml_private.py`` imports every entry of ``PRIVATE_APIS`` and fails the same way.
The plugin's code env (``code-env/python/spec/requirements.txt``) bounds snowflake-ml-python to ``TESTED_SNOWML``,
the minor versions this was checked against. Imports snowflake-ml only inside its functions.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from spcs_llm.core.errors import DeploymentError

TESTED_SNOWML = ">=2.6,<2.7"  # the pin of snowflake-ml-python in code-env/python/spec/requirements.txt
_PARAM_UTILS = "snowflake.ml.model._client.ops.param_utils"
_SERVICE_OPS = "snowflake.ml.model._client.ops.service_ops"

# (module, attribute, what spcs-llm uses it for)
PRIVATE_APIS: tuple[tuple[str, str, str], ...] = (
    (_PARAM_UTILS, "validate_and_resolve_params", "batch: generation params checked against the signature"),
    (_PARAM_UTILS, "format_param_value_for_sql", "batch: params as SQL literals for the service function"),
    ("snowflake.ml._internal.platform_capabilities", "PlatformCapabilities",
     "adapters: whether the account has ENABLE_LORA_ADAPTERS (the check PeftAdapter itself makes)"),
    ("snowflake.ml._internal.utils.sql_identifier", "SqlIdentifier", "batch: the printed job statement"),
    ("snowflake.ml.model._client.model.batch_inference_job_specs", "AdapterSpec", "batch: the printed job statement"),
    (_SERVICE_OPS, "build_inference_job_service_yaml", "batch: the printed job statement"),
    (_SERVICE_OPS, "normalize_output_stage_location", "batch: the printed job statement"),
    ("snowflake.ml.model._client.service.inference_job_service_spec", "_InternalInputSpec",
     "batch: the printed job statement"),
    ("snowflake.ml.model._client.sql.service", "build_execute_inference_job_service_sql",
     "batch: the printed job statement"),
)


def _installed_version() -> str:
    try:
        return metadata.version("snowflake-ml-python")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _private(module: str, name: str) -> Any:
    """``module.name``, or a DeploymentError naming it and the snowflake-ml versions spcs-llm was tested with."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise DeploymentError(
            f"snowflake-ml-python {_installed_version()} has no {module}.{name}, which spcs-llm uses (a private "
            "snowflake-ml function that moved in this version).",
            fix=f"Install snowflake-ml-python{TESTED_SNOWML}: pip install -r notebooks/requirements.txt.",
        ) from None


def resolve_params(params: dict[str, Any] | None, signature_params: Any) -> list[tuple[Any, Any]]:
    """The signature's params in order with the given values or their defaults; refuses unknown names and bad
    values with snowml's own message (``param_utils.validate_and_resolve_params``)."""
    resolved = _private(_PARAM_UTILS, "validate_and_resolve_params")(params, signature_params)
    return list(resolved or [])


def param_sql(value: Any) -> str:
    """A param value as the SQL literal snowml itself sends (``param_utils.format_param_value_for_sql``)."""
    return str(_private(_PARAM_UTILS, "format_param_value_for_sql")(value))


def lora_adapters_enabled() -> bool:
    """Whether ``PeftAdapter`` will accept an adapter: the very check its constructor and the PEFT packager make
    (``PlatformCapabilities.get_instance().is_lora_adapters_enabled()``, ``model/models/huggingface.py``), read
    from the account's ``SYSTEM$ML_PLATFORM_CAPABILITIES`` by the registry session."""
    capabilities = _private("snowflake.ml._internal.platform_capabilities", "PlatformCapabilities")
    return bool(capabilities.get_instance().is_lora_adapters_enabled())


def execute_inference_job_sql(
    *,
    arguments: dict[str, Any],
    pool: str,
    model_fqn: str,
    version_name: str,
    adapter: tuple[str, str, str] | None,
) -> str:
    """The EXECUTE INFERENCE JOB SERVICE statement ``run_batch(**arguments)`` sends, built by snowml's own functions
    (``_client/ops/service_ops.py`` ``build_inference_job_service_yaml``, ``_client/sql/service.py``
    ``build_execute_inference_job_service_sql``), for printing. ``adapter`` is (model fqn, version, alias): run_batch
    turns ``inference_spec.adapters`` into AdapterSpecs the same way (``model_version_impl._prepare_lora_batch``)."""
    identifier = _private("snowflake.ml._internal.utils.sql_identifier", "SqlIdentifier")
    adapter_spec = _private("snowflake.ml.model._client.model.batch_inference_job_specs", "AdapterSpec")
    input_spec = _private("snowflake.ml.model._client.service.inference_job_service_spec", "_InternalInputSpec")
    build_yaml = _private(_SERVICE_OPS, "build_inference_job_service_yaml")
    normalize_output = _private(_SERVICE_OPS, "normalize_output_stage_location")
    build_sql = _private("snowflake.ml.model._client.sql.service", "build_execute_inference_job_service_sql")

    inference = arguments["inference_spec"]
    if inference is not None and adapter is not None:
        name, version, alias = adapter
        inference = inference.model_copy(update={"adapters": [adapter_spec(name=name, version=version, alias=alias)]})
    body = build_yaml(
        input_spec=input_spec.from_input_spec(arguments["input_spec"]),
        output_spec=normalize_output(arguments["output_spec"]),
        resources_spec=arguments["resources_spec"], inference_spec=inference, image_build_spec=None,
    )
    return str(build_sql(
        yaml_body=body, compute_pool_name=identifier(pool), model_fqn=model_fqn, version=identifier(version_name),
        function_name=arguments["function_name"], job_fqn=arguments["job_name"], async_=True,
        replicas=arguments["replicas"], from_source=arguments["input_stage_location"],
    ))
