"""LoRA adapters through the real snowflake-ml 2.6 code, down to the recording fake session: logged pinned to the base
version (PeftAdapter), merged where the account lacks ENABLE_LORA_ADAPTERS, and served with the base on vLLM."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.deploy import CATALOG, Deployer, DeployOptions, WaitSettings
from spcs_llm.deploy.adapters.registration import AdapterRequest, local_adapter_dir, log_adapter, parse_adapter
from spcs_llm.deploy.adapters.serving import adapter_service_spec, serve_adapters
from spcs_llm.deploy.services.connection import connection_settings
from spcs_llm.deploy.services.engine import EngineOptions
from spcs_llm.deploy.services.registry_ops import open_registry

FAST = DeployOptions(wait=WaitSettings(timeout_s=60, poll_interval_s=5))
# The merged model is logged with the OpenAI-chat signature on purpose; snowflake-ml warns that it cannot check it.
pytestmark = pytest.mark.filterwarnings("ignore:It is impossible to validate your model signatures")


@pytest.fixture(scope="module")
def trained_adapter() -> str:
    """A real LoRA adapter of the stand-in's tiny chat model (trained once, then cached)."""
    from spcs_standin.lora_engine import adapter_dir

    return str(adapter_dir())


@pytest.fixture(scope="module")
def base_weights() -> str:
    from spcs_standin.tinychat import chat_model_dir

    return str(chat_model_dir())


def _deployer(session) -> Deployer:
    ticks = iter(range(0, 100_000, 5))
    return Deployer(session, sleep=lambda _s: None, clock=lambda: next(ticks))


def _base_version(session, account):
    account.add_version("ZEPHYR_7B_BETA", "V1")
    return _deployer(session).registry.get_model("ZEPHYR_7B_BETA").version("V1")


def _manifest(account, model: str, version: str) -> dict:
    return yaml.safe_load(account.model_specs[(model, version)])


def test_the_adapter_is_logged_pinned_to_its_base_version(session, account, trained_adapter):
    account.lora_adapters_enabled = True
    base = _base_version(session, account)
    logged = log_adapter(open_registry(session, Deployer(session).names), base, trained_adapter,
                         AdapterRequest("support_bot", trained_adapter))

    assert session.statements_like("CREATE MODEL SPCS_LLM.MODELS.SUPPORT_BOT WITH VERSION V1 FROM @")
    blob = _manifest(account, "SUPPORT_BOT", "V1")["models"]["SUPPORT_BOT"]
    assert blob["model_type"] == "peft_adapter"
    assert (blob["options"]["base_model_name"], blob["options"]["base_model_version"]) == (
        "SPCS_LLM.MODELS.ZEPHYR_7B_BETA", "V1")
    uploaded = {Path(path).name for path in account.uploaded if "/models/SUPPORT_BOT/adapter/" in path}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= uploaded
    assert account.pins[("SUPPORT_BOT", "V1")] == ("ZEPHYR_7B_BETA", "V1")
    assert (logged.merged, logged.reused, logged.alias) == (False, False, "support_bot")
    # The adapter version exposes its base's chat function, resolved through the pin (model_ops.get_functions).
    assert [f["target_method"] for f in logged.model_version.show_functions()] == ["__call__"]


def _hf_cache_snapshot(adapter: str, root: Path) -> Path:
    """The layout of a Hugging Face cache snapshot: every file a relative symlink into ``blobs/``."""
    blobs, snapshot = root / "blobs", root / "snapshots" / "0123abcd"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for index, source in enumerate(sorted(Path(adapter).iterdir())):
        if source.is_file():
            (blobs / f"blob{index}").write_bytes(source.read_bytes())
            (snapshot / source.name).symlink_to(Path("..", "..", "blobs", f"blob{index}"))
    return snapshot


def test_a_symlinked_cache_snapshot_is_logged_as_real_files(session, account, trained_adapter, tmp_path):
    # snowflake-ml's PEFT packaging refuses a symlinked adapter_config.json and skips symlinked weights
    # (_packager/model_handlers/peft_adapter.py, _copy_top_level_files); the adapter is copied to real files first.
    account.lora_adapters_enabled = True
    snapshot = _hf_cache_snapshot(trained_adapter, tmp_path / "models--me--support-bot")
    assert (snapshot / "adapter_config.json").is_symlink()
    base = _base_version(session, account)
    log_adapter(open_registry(session, Deployer(session).names), base, str(snapshot),
                AdapterRequest("support_bot", str(snapshot)))

    uploaded = {Path(path).name for path in account.uploaded if "/models/SUPPORT_BOT/adapter/" in path}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= uploaded
    assert account.pins[("SUPPORT_BOT", "V1")] == ("ZEPHYR_7B_BETA", "V1")
    assert (snapshot / "adapter_config.json").is_symlink()  # the user's folder is left as it was


def test_a_snapshot_with_a_dangling_symlink_is_refused_with_the_fix(session, account, trained_adapter, tmp_path):
    account.lora_adapters_enabled = True
    snapshot = _hf_cache_snapshot(trained_adapter, tmp_path / "models--me--support-bot")
    (snapshot / "adapter_model.safetensors").resolve().unlink()
    base = _base_version(session, account)
    with pytest.raises(ConfigurationError, match="adapter_model.safetensors") as raised:
        log_adapter(open_registry(session, Deployer(session).names), base, str(snapshot),
                    AdapterRequest("support_bot", str(snapshot)))
    assert "--local-dir" in raised.value.fix
    assert session.statements_like("CREATE MODEL") == []


def test_without_lora_support_the_adapter_is_merged_and_logged_as_a_full_chat_model(
        session, account, trained_adapter, base_weights, caplog):
    base = _base_version(session, account)
    with caplog.at_level(logging.WARNING):
        logged = log_adapter(open_registry(session, Deployer(session).names), base, trained_adapter,
                             AdapterRequest("support_bot", trained_adapter), base_model_dir=base_weights)

    assert session.statements_like("CREATE MODEL SPCS_LLM.MODELS.SUPPORT_BOT WITH VERSION V1_MERGED FROM @")
    manifest = _manifest(account, "SUPPORT_BOT", "V1_MERGED")
    assert manifest["model_type"] == "huggingface_pipeline"
    assert [i["name"] for i in manifest["signatures"]["__call__"]["inputs"]] == ["messages"]
    assert any(path.endswith("/models/SUPPORT_BOT/model/model.safetensors") for path in account.uploaded)
    assert account.pins == {}
    assert logged.merged is True and "not enabled" in logged.note and "merged" in caplog.text


def test_the_merge_is_chosen_by_the_accounts_lora_capability_not_by_an_error_text(
        session, account, trained_adapter, base_weights, monkeypatch):
    from snowflake.ml.model.models import huggingface

    class NoAdapter(huggingface.PeftAdapter):  # a subclass: snowflake-ml's handlers still isinstance-check it
        def __init__(self, **_kwargs):
            raise AssertionError("PeftAdapter must not be tried on an account without LoRA adapters")

    monkeypatch.setattr(huggingface, "PeftAdapter", NoAdapter)
    base = _base_version(session, account)
    logged = log_adapter(open_registry(session, Deployer(session).names), base, trained_adapter,
                         AdapterRequest("support_bot", trained_adapter), base_model_dir=base_weights)
    assert logged.merged is True


def test_with_lora_support_any_adapter_error_is_raised_not_turned_into_a_merge(
        session, account, trained_adapter, monkeypatch):
    from snowflake.ml.model.models import huggingface

    class Refused(huggingface.PeftAdapter):
        def __init__(self, **_kwargs):
            raise ValueError("adapter refused although ENABLE_LORA_ADAPTERS is mentioned")

    account.lora_adapters_enabled = True
    monkeypatch.setattr(huggingface, "PeftAdapter", Refused)
    base = _base_version(session, account)
    with pytest.raises(ValueError, match="adapter refused"):
        log_adapter(open_registry(session, Deployer(session).names), base, trained_adapter,
                    AdapterRequest("support_bot", trained_adapter), base_model_dir="/unused",
                    merge=lambda *_folders: pytest.fail("merged"))
    assert session.statements_like("CREATE MODEL") == []


def test_without_lora_support_and_no_base_weights_the_error_names_the_fix(session, account, trained_adapter):
    base = _base_version(session, account)
    with pytest.raises(ConfigurationError, match="--base-model-dir"):
        log_adapter(open_registry(session, Deployer(session).names), base, trained_adapter,
                    AdapterRequest("support_bot", trained_adapter))
    assert session.statements_like("CREATE MODEL") == []


@pytest.mark.parametrize(("text", "message"), [
    ("support_bot", "not NAME=LOCATION"),
    ("9lives=/tmp", "not a plain identifier"),
    ("bot=/nowhere", "no adapter_config.json"),
    ("bot=@stage with space/x", "not a stage path"),
])
def test_bad_adapter_arguments_are_refused_with_a_fix(text, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse_adapter(text)
    assert caught.value.fix


def test_base_and_adapters_are_served_on_vllm_with_one_model_per_adapter(session, account, trained_adapter):
    account.lora_adapters_enabled = True
    spec = adapter_service_spec(_vllm("zephyr-7b-beta", max_model_len=4096))
    result = serve_adapters(_deployer(session), spec, [AdapterRequest("support_bot", trained_adapter),
                                                       AdapterRequest("legal_bot", trained_adapter)], FAST)

    deploy_spec = account.deploy_specs[-1]
    assert deploy_spec["models"] == [{"name": "SPCS_LLM.MODELS.ZEPHYR_7B_BETA", "version": "V1"}]
    assert deploy_spec["service"]["name"] == "SPCS_LLM.MODELS.ZEPHYR_7B_BETA_LORA_SVC"
    assert deploy_spec["service"]["adapters"] == [
        {"alias": "support_bot", "name": "SPCS_LLM.MODELS.SUPPORT_BOT", "version": "V1"},
        {"alias": "legal_bot", "name": "SPCS_LLM.MODELS.LEGAL_BOT", "version": "V1"}]
    assert deploy_spec["service"]["inference_engine_spec"] == {"inference_engine_name": "vllm",
                                                               "inference_engine_args": ["--max-model-len=4096"]}
    settings = [connection_settings(model) for model in [result.base, *result.adapters]]
    assert [(s.get("adapter"), s["engine"]) for s in settings] == [
        (None, "vllm"), ("support_bot", "vllm"), ("legal_bot", "vllm")]
    assert {s["endpoint"] for s in settings} == {"https://zephyr_7b_beta_lora_svc-org-acct.snowflakecomputing.app"}


def test_a_second_run_reuses_the_adapters_and_the_service(session, account, trained_adapter):
    account.lora_adapters_enabled = True
    spec = adapter_service_spec(_vllm("zephyr-7b-beta"))
    requests = [AdapterRequest("support_bot", trained_adapter)]
    serve_adapters(_deployer(session), spec, requests, FAST)
    created, deployed = len(session.statements_like("CREATE MODEL")), len(account.deploy_specs)

    again = serve_adapters(_deployer(session), spec, requests, FAST)
    assert len(session.statements_like("CREATE MODEL")) == created and len(account.deploy_specs) == deployed
    assert again.base.service_reused and again.logged[0].reused
    assert [model.adapter for model in again.adapters] == ["support_bot"]


def test_a_new_adapter_on_a_kept_service_says_to_replace_it(session, account, trained_adapter):
    account.lora_adapters_enabled = True
    spec = adapter_service_spec(_vllm("zephyr-7b-beta"))
    serve_adapters(_deployer(session), spec, [AdapterRequest("support_bot", trained_adapter)], FAST)
    again = serve_adapters(_deployer(session), spec, [AdapterRequest("support_bot", trained_adapter),
                                                      AdapterRequest("legal_bot", trained_adapter)], FAST)
    assert any("--replace" in note and "legal_bot" in note for note in again.notes)

    replaced = serve_adapters(_deployer(session), spec, [AdapterRequest("support_bot", trained_adapter),
                                                         AdapterRequest("legal_bot", trained_adapter)],
                              DeployOptions(replace_service=True, wait=FAST.wait))
    assert [a["alias"] for a in account.deploy_specs[-1]["service"]["adapters"]] == ["support_bot", "legal_bot"]
    assert not replaced.base.service_reused


def test_an_adapter_on_a_stage_is_downloaded_before_logging(session, account, trained_adapter):
    account.lora_adapters_enabled = True
    for file in Path(trained_adapter).iterdir():
        if file.is_file():
            account.uploaded[f"@SPCS_LLM.MODELS.FINETUNE/support_bot/{file.name}"] = file.read_bytes()
    spec = adapter_service_spec(_vllm("zephyr-7b-beta"))
    serve_adapters(_deployer(session), spec, [parse_adapter("support_bot=@SPCS_LLM.MODELS.FINETUNE/support_bot")],
                   FAST)
    assert session.statements_like("CREATE MODEL SPCS_LLM.MODELS.SUPPORT_BOT WITH VERSION V1 FROM @")
    assert account.pins == {("SUPPORT_BOT", "V1"): ("ZEPHYR_7B_BETA", "V1")}


def test_without_lora_support_each_merged_adapter_gets_its_own_vllm_service(
        session, account, trained_adapter, base_weights):
    spec = adapter_service_spec(_vllm("zephyr-7b-beta"))
    result = serve_adapters(_deployer(session), spec, [AdapterRequest("support_bot", trained_adapter)], FAST,
                            base_model_dir=base_weights)

    base_spec, merged_spec = account.deploy_specs
    assert "adapters" not in base_spec["service"]
    assert merged_spec["models"] == [{"name": "SPCS_LLM.MODELS.SUPPORT_BOT", "version": "V1_MERGED"}]
    assert merged_spec["service"]["name"] == "SPCS_LLM.MODELS.SUPPORT_BOT_SVC"
    assert merged_spec["service"]["inference_engine_spec"]["inference_engine_name"] == "vllm"
    settings = connection_settings(result.adapters[0])
    assert "adapter" not in settings and settings["engine"] == "vllm"
    assert settings["endpoint"] == "https://support_bot_svc-org-acct.snowflakecomputing.app"
    assert any("merged" in note for note in result.notes)


def test_an_adapter_pinned_to_another_base_is_refused_at_deploy(session, account, trained_adapter):
    account.lora_adapters_enabled = True
    account.add_version("LLAMA_3_1_8B_INSTRUCT", "V1")
    other = _deployer(session).registry.get_model("LLAMA_3_1_8B_INSTRUCT").version("V1")
    log_adapter(open_registry(session, Deployer(session).names), other, trained_adapter,
                AdapterRequest("support_bot", trained_adapter))
    with pytest.raises(DeploymentError, match="pinned to"):
        serve_adapters(_deployer(session), adapter_service_spec(_vllm("zephyr-7b-beta")),
                       [AdapterRequest("support_bot", trained_adapter)], FAST)


def test_adapters_need_the_vllm_engine():
    from spcs_llm.deploy import resolve_model

    with pytest.raises(ConfigurationError, match="vLLM engine only"):
        adapter_service_spec(resolve_model("zephyr-7b-beta", engine=EngineOptions("python")))


def _vllm(key: str, **settings):
    from spcs_llm.deploy import resolve_model

    assert CATALOG[key].engine.is_vllm
    return resolve_model(key, engine=EngineOptions(**settings))


def test_a_stage_folder_with_checkpoints_gives_its_top_most_adapter(session, account, tmp_path):
    for folder in ("job1/adapter", "job1/adapter/checkpoint-10"):
        account.uploaded[f"@SPCS_LLM.MODELS.FINETUNE/{folder}/adapter_config.json"] = b"{}"
    request = parse_adapter("bot=@SPCS_LLM.MODELS.FINETUNE/job1")
    assert Path(local_adapter_dir(session, request, str(tmp_path))) == tmp_path / "bot" / "adapter"


def test_an_empty_stage_folder_is_refused_naming_the_fix(session, account, tmp_path):
    account.uploaded["@SPCS_LLM.MODELS.FINETUNE/job1/losses.json"] = b"[]"
    with pytest.raises(ConfigurationError, match="holds no adapter_config.json") as caught:
        local_adapter_dir(session, parse_adapter("bot=@SPCS_LLM.MODELS.FINETUNE/job1"), str(tmp_path))
    assert "LIST" in caught.value.fix


def test_merging_without_peft_installed_names_the_requirements_file(monkeypatch, tmp_path):
    import sys

    from spcs_llm.deploy.adapters.registration import merge_adapter
    from spcs_llm.deploy.dependencies import DeploymentStackMissingError

    monkeypatch.setitem(sys.modules, "peft", None)  # what an environment without peft gives on import
    with pytest.raises(DeploymentStackMissingError, match="needs the Python package 'peft'") as caught:
        merge_adapter(str(tmp_path), str(tmp_path), str(tmp_path / "merged"))
    assert "notebooks/requirements-lora.txt" in caught.value.fix
