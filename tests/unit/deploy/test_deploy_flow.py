"""Deploying catalog models through the real snowflake-ml 2.6 code, down to a recording fake Snowpark session."""

from __future__ import annotations

import json

import pytest
import yaml

from spcs_llm.core.errors import ConfigurationError, DeploymentError, DeploymentTimeoutError, ServiceFailedError
from spcs_llm.deploy import CATALOG, Deployer, DeployOptions, WaitSettings, resolve_model
from spcs_llm.deploy.services.engine import EngineOptions
from spcs_llm.spcs.templates import template_source

FAST = DeployOptions(wait=WaitSettings(timeout_s=60, poll_interval_s=5))


def _deployer(session) -> Deployer:
    ticks = iter(range(0, 100_000, 5))
    return Deployer(session, sleep=lambda _s: None, clock=lambda: next(ticks))


def _service_spec(account, service: str) -> dict:
    return next(spec for spec in account.deploy_specs if spec["service"]["name"].endswith(service))


@pytest.mark.parametrize("key", [k for k, spec in CATALOG.items() if not spec.attach_chat_template])
def test_remote_logged_models_deploy_with_the_expected_arguments(session, account, key):
    spec = CATALOG[key]
    deployed = _deployer(session).deploy(spec, FAST)

    imported = account.import_specs[0]
    assert imported["compute_pool"] == "SPCS_LLM_CPU_POOL"
    hf_model = imported["models"][0]["hf_model"]
    assert hf_model["hf_model_name"] == spec.hf_id
    assert hf_model.get("task") == (None if spec.kind == "embedding" else "text-generation")
    assert hf_model.get("token_secret_object") == ("SPCS_LLM.MODELS.HF_TOKEN" if spec.gated else None)
    assert imported["models"][0]["log_model_args"]["target_platforms"] == ["SNOWPARK_CONTAINER_SERVICES"]

    service = _service_spec(account, spec.service_name)
    assert service["service"]["compute_pool"] == ("SPCS_LLM_GPU_POOL" if spec.uses_gpu else "SPCS_LLM_CPU_POOL")
    assert service["service"]["ingress_enabled"] is True
    assert service["service"]["min_instances"] == 0 and service["service"]["max_instances"] == 1
    assert service["service"].get("gpu") == ("1" if spec.uses_gpu else None)
    assert service["service"].get("max_batch_rows") == spec.max_batch_rows
    if spec.kind == "chat":  # vLLM by default: snowflake-ml builds no image for it
        assert service["service"]["inference_engine_spec"] == {"inference_engine_name": "vllm",
                                                               "inference_engine_args": []}
        assert "image_build" not in service
    else:
        assert "inference_engine_spec" not in service["service"]
        assert service["image_build"]["compute_pool"] == "SPCS_LLM_CPU_POOL"
        assert service["image_build"]["image_repo"] == "SPCS_LLM.MODELS.IMAGES"
        assert service["image_build"]["external_access_integrations"] == ["SPCS_LLM_EGRESS_EAI"]

    assert deployed.status == "RUNNING"
    assert deployed.ingress_host == f"{spec.service_name.lower()}-org-acct.snowflakecomputing.app"
    assert deployed.instance_family == ("GPU_NV_S" if spec.uses_gpu else "CPU_X64_S")
    assert account.grants == [f"{spec.service_name}->SPCS_LLM_USER"]
    assert session.statements_like("CREATE MODEL") == []


# The deployer passes the OpenAI-chat signature on purpose; snowflake-ml warns that it cannot check it.
NO_SIGNATURE_CHECK = pytest.mark.filterwarnings("ignore:It is impossible to validate your model signatures")


@NO_SIGNATURE_CHECK
@pytest.mark.parametrize("key", ["phi-2", "falcon-7b-instruct"])
def test_models_without_a_chat_template_get_the_family_template_and_the_openai_signature(session, account, key):
    spec = CATALOG[key]
    _deployer(session).deploy(spec, FAST)

    assert account.import_specs == []
    assert session.statements_like(f"CREATE MODEL SPCS_LLM.MODELS.{spec.model_name} WITH VERSION V1")
    uploaded = {path.split("/model/", 1)[1]: content for path, content in account.uploaded.items()}
    tokenizer_config = json.loads(uploaded[f"model/models/{spec.model_name}/model/tokenizer_config.json"])
    assert tokenizer_config["chat_template"] == template_source(spec.family)
    assert tokenizer_config["eos_token"] == "<|endoftext|>"
    manifest = yaml.safe_load(uploaded["model/model.yaml"])
    assert [i["name"] for i in manifest["signatures"]["__call__"]["inputs"]] == ["messages"]
    assert {o["name"] for o in manifest["signatures"]["__call__"]["outputs"]} >= {"choices", "usage"}
    assert _service_spec(account, spec.service_name)["service"]["ingress_enabled"] is True


@NO_SIGNATURE_CHECK
def test_the_hub_cache_is_left_without_the_attached_template(session, hub_snapshot):
    _deployer(session).deploy(CATALOG["phi-2"], FAST)
    assert "chat_template" not in json.loads((hub_snapshot / "tokenizer_config.json").read_text())


def test_a_second_run_reuses_the_version_and_the_running_service(session, account):
    deployer = _deployer(session)
    first = deployer.deploy(CATALOG["zephyr-7b-beta"], FAST)
    statements_after_first = len(session.statements)
    second = deployer.deploy(CATALOG["zephyr-7b-beta"], FAST)

    later = session.statements[statements_after_first:]
    assert not any("IMPORT_MODEL" in s or "DEPLOY_MODEL" in s or s.startswith("DROP") for s in later)
    assert (second.version_reused, second.service_reused) == (True, True)
    assert (first.version_reused, first.service_reused) == (False, False)
    assert second.ingress_host == first.ingress_host


def test_replace_service_drops_and_recreates_it(session, account):
    deployer = _deployer(session)
    deployer.deploy(CATALOG["zephyr-7b-beta"], FAST)
    deployer.deploy(CATALOG["zephyr-7b-beta"], DeployOptions(replace_service=True, wait=FAST.wait))

    assert session.statements_like("DROP SERVICE SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC")
    assert len(account.deploy_specs) == 2
    assert len(account.import_specs) == 1


def test_replace_version_drops_version_and_service_then_logs_again(session, account):
    deployer = _deployer(session)
    deployer.deploy(CATALOG["zephyr-7b-beta"], FAST)
    deployed = deployer.deploy(CATALOG["zephyr-7b-beta"], DeployOptions(replace_version=True, wait=FAST.wait))

    assert session.statements_like("DROP SERVICE SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC")
    assert session.statements_like("ALTER MODEL SPCS_LLM.MODELS.ZEPHYR_7B_BETA DROP VERSION V1")
    assert len(account.import_specs) == 2 and len(account.deploy_specs) == 2
    assert deployed.version_reused is False


def test_a_failed_service_is_recreated_on_the_next_run(session, account):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["FAILED"])
    deployed = _deployer(session).deploy(CATALOG["zephyr-7b-beta"], FAST)
    assert session.statements_like("DROP SERVICE SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC")
    assert deployed.status == "RUNNING" and deployed.service_reused is False


def test_a_foreign_service_with_the_same_name_is_not_touched_without_replace(session, account):
    account.add_service("OTHER_MODEL", "V7", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    with pytest.raises(DeploymentError, match="--replace to drop it"):
        _deployer(session).deploy(CATALOG["zephyr-7b-beta"], FAST)
    assert "ZEPHYR_7B_BETA_SVC" in account.services and account.deploy_specs == []


def test_missing_pool_fails_before_anything_is_logged(session, account):
    del account.compute_pools["SPCS_LLM_GPU_POOL"]
    with pytest.raises(DeploymentError) as caught:
        _deployer(session).deploy(CATALOG["zephyr-7b-beta"], FAST)
    assert "SPCS_LLM_GPU_POOL does not exist" in str(caught.value)
    assert "spcs-llm setup-sql" in caught.value.fix
    assert account.import_specs == [] and account.models == {}


@pytest.mark.parametrize(("pool_family", "problem"),
                         [("GPU_NV_XS", "too little GPU memory"), ("CPU_X64_M", "has no GPU")])
def test_a_pool_too_small_for_the_model_fails_before_anything_is_logged(session, account, pool_family, problem):
    account.compute_pools["SPCS_LLM_GPU_POOL"] = pool_family
    with pytest.raises(DeploymentError, match=problem) as caught:
        _deployer(session).deploy(CATALOG["llama-3.1-8b-instruct"], FAST)
    assert "--gpu-pool" in caught.value.fix and "GPU_NV_S" in caught.value.fix
    assert account.import_specs == [] and account.models == {}


def test_a_small_model_runs_on_a_small_gpu_pool(session, account):
    account.compute_pools["SPCS_LLM_GPU_POOL"] = "GPU_NV_XS"
    assert _deployer(session).deploy(CATALOG["llama-3.2-3b-instruct"], FAST).instance_family == "GPU_NV_XS"


def test_failed_service_raises_with_its_logs(session, account):
    account.next_statuses = ["PENDING", "FAILED"]
    account.next_logs = "torch.cuda.OutOfMemoryError: CUDA out of memory"
    with pytest.raises(ServiceFailedError) as caught:
        _deployer(session).deploy(CATALOG["zephyr-7b-beta"], FAST)
    assert "FAILED" in str(caught.value)
    assert "CUDA out of memory" in caught.value.logs
    assert session.statements_like(
        "CALL SYSTEM$GET_SERVICE_LOGS('SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC', '0', 'model-inference'")
    assert account.grants == []


def test_a_service_that_never_starts_times_out(session, account):
    account.next_statuses = ["PENDING"]
    with pytest.raises(DeploymentTimeoutError, match="still PENDING") as caught:
        _deployer(session).deploy(CATALOG["zephyr-7b-beta"], FAST)
    assert "re-run `spcs-llm deploy`" in caught.value.fix
    assert account.grants == []


def test_a_refused_deploy_job_names_the_missing_privilege(session, account):
    account.deploy_error = "003001 (42501): Insufficient privileges: BIND SERVICE ENDPOINT is required on the account."
    with pytest.raises(ServiceFailedError) as caught:
        _deployer(session).deploy(CATALOG["zephyr-7b-beta"], FAST)
    assert "GRANT BIND SERVICE ENDPOINT ON ACCOUNT" in caught.value.fix


def test_a_missing_grant_privilege_names_the_statement_to_run(session, account):
    account.refuse_grants = True
    with pytest.raises(DeploymentError) as caught:
        _deployer(session).deploy(CATALOG["zephyr-7b-beta"], FAST)
    grant = "GRANT SERVICE ROLE SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC!ALL_ENDPOINTS_USAGE TO ROLE SPCS_LLM_USER;"
    assert grant in caught.value.fix


def test_vllm_options_and_scaling_overrides_reach_the_service_spec(session, account):
    engine = EngineOptions(max_model_len=4096, gpu_memory_utilization=0.85, extra_args=("--enforce-eager",))
    spec = resolve_model("zephyr-7b-beta", engine=engine, min_instances=1, max_instances=3, num_workers=2)
    _deployer(session).deploy(spec, FAST)
    service = _service_spec(account, spec.service_name)
    assert service["service"]["inference_engine_spec"] == {
        "inference_engine_name": "vllm",
        "inference_engine_args": ["--max-model-len=4096", "--gpu-memory-utilization=0.85", "--enforce-eager"]}
    assert (service["service"]["min_instances"], service["service"]["max_instances"]) == (1, 3)
    assert service["service"]["num_workers"] == 2


def test_the_python_engine_builds_an_image_and_sends_no_engine_spec(session, account):
    spec = resolve_model("zephyr-7b-beta", engine=EngineOptions("python"))
    _deployer(session).deploy(spec, FAST)
    service = _service_spec(account, spec.service_name)
    assert "inference_engine_spec" not in service["service"]
    assert service["image_build"]["compute_pool"] == "SPCS_LLM_CPU_POOL"


def test_a_tensor_parallel_size_the_pool_cannot_split_fails_before_anything_is_logged(session, account):
    spec = resolve_model("zephyr-7b-beta", instance_family="GPU_NV_M", gpu_count=2,
                         engine=EngineOptions(tensor_parallel_size=2))  # sized for 4 GPUs; the pool has 1 per node
    with pytest.raises(ConfigurationError, match="needs 2 GPUs on one node"):
        _deployer(session).deploy(spec, FAST)
    assert session.statements_like("SELECT SYSTEM$IMPORT_MODEL") == []


def test_status_lists_services_with_their_ingress_host(session, account):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    assert Deployer(session).status() == [{
        "service": "SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC", "status": "RUNNING",
        "ingress_host": "zephyr_7b_beta_svc-org-acct.snowflakecomputing.app", "compute_pool": "SPCS_LLM_GPU_POOL"}]
