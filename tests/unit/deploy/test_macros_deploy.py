"""The deploy macro: the estimate and the plan without the explicit yes (nothing submitted, no session), the
deployment with it (the service created, waited for, the DSS settings shown), and the optional update of a
Custom LLM connection through dataikuapi against a recorded DSS."""

from __future__ import annotations

import json
import types

import pytest
import responses
from dataikuapi import DSSClient
from macro_runner import dss_with, run_macro

import dataiku_fakes
from spcs_llm.deploy.services.catalog import CATALOG
from spcs_llm.deploy.services.estimate import estimate
from spcs_llm.macros import deploy_model

DSS_URL = "http://dss.test"
CONNECTION_URL = f"{DSS_URL}/dip/publicapi/admin/connections/snowflake-llms"


@pytest.fixture
def dss(session, monkeypatch):
    yield from dss_with(session, monkeypatch)


@pytest.fixture
def instant(monkeypatch):
    """The deployer's waits take no time: a fake clock that the fake sleep moves forward."""
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(deploy_model, "time", types.SimpleNamespace(sleep=sleep, monotonic=lambda: now[0]))
    return sleeps


def test_without_the_yes_it_shows_the_estimate_and_the_plan_and_submits_nothing(dss, session, account):
    run = run_macro("spcs-deploy-model", connection="snow", model="zephyr-7b-beta", dollars_per_credit=2)
    text = run.page.text
    assert estimate(CATALOG["zephyr-7b-beta"], 2.0).text() in text
    assert "Nothing was submitted: tick 'I accept the cost shown'" in text
    assert "Dry run of `spcs-llm deploy zephyr-7b-beta`" in text and "model_version.create_service(" in text
    assert session.statements == [] and dss.connections_asked == [] and account.deploy_specs == []
    assert run.progress == [deploy_model.WAIT_STEPS]


def test_with_the_yes_it_deploys_waits_and_shows_the_dss_settings(dss, session, account, instant):
    account.next_statuses = ["PENDING", "PENDING", "RUNNING"]
    run = run_macro("spcs-deploy-model", connection="snow", model="zephyr-7b-beta", accept_cost=True,
                    max_instances=2, engine="vllm")
    text = run.page.text
    assert dss.connections_asked == ["snow"]
    assert len(account.deploy_specs) == 1 and session.statements_like("CALL SYSTEM$DEPLOY_MODEL")
    assert account.grants == ["ZEPHYR_7B_BETA_SVC->SPCS_LLM_USER"]
    assert "SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC is RUNNING." in text
    for shown in ("Add model > SPCS chat model", "Endpoint: https://zephyr_7b_beta_svc-org-acct.snowflakecomputing.app",
                  "Method route: __call__", "Inference engine: vLLM", "Max parallelism: 64"):
        assert shown in text
    assert instant and run.target == (deploy_model.WAIT_STEPS, "NONE")
    assert run.progress[0] == 1 and run.progress[-1] == deploy_model.WAIT_STEPS
    assert run.progress == sorted(run.progress)


def test_a_failed_service_is_one_block_with_its_logs_and_fix(dss, account, instant):
    account.next_statuses = ["FAILED"]
    account.next_logs = "ValueError: model weights not found"
    page = run_macro("spcs-deploy-model", connection="snow", model="qwen2.5-7b-instruct", accept_cost=True).page
    assert "Error: Service SPCS_LLM.MODELS.QWEN2_5_7B_INSTRUCT_SVC is FAILED." in page.text
    assert "ValueError: model weights not found" in page.text and "Fix:" in page.text
    assert "Traceback" not in page.text and "Settings to enter in DSS" not in page.text


@pytest.mark.parametrize(("config", "message"), [
    ({"model": "other"}, "Error: No model chosen."),
    ({"model": "other", "hf_id": "not an id"}, "is neither a catalog model nor a Hugging Face id"),
    ({"max_instances": 0}, "need gpu_count >= 0 and 1 <= max_instances"),
    ({"timeout_minutes": 0}, "timeout_minutes must be at least 1"),
])
def test_a_wrong_form_is_refused_before_any_connection(dss, session, config, message):
    page = run_macro("spcs-deploy-model", connection="snow", accept_cost=True, **config).page
    assert message in page.text and "Fix:" in page.text
    assert session.statements == [] and dss.connections_asked == []


def test_a_fix_names_the_form_fields_and_says_which_options_the_form_lacks(dss, session):
    page = run_macro("spcs-deploy-model", connection="snow", model="zephyr-7b-beta", instance_family="GPU_NV_XS",
                     accept_cost=True).page
    assert "does not fit 1 GPU(s) of GPU_NV_XS" in page.text
    assert "Fix: Pass a larger 'Instance family' (more GPU memory)" in page.text
    assert "--instance-family" not in page.text
    assert "(--gpus: options of the spcs-llm command line, which this macro does not set)" in page.text
    assert session.statements == []


def _connection(models: list[dict]) -> dict:
    """A Custom LLM connection definition in the shape this macro infers (params.models, entries with an id)."""
    return {"name": "snowflake-llms", "type": "CustomLLM", "params": {"models": models}}


TEMPLATE = {"id": "phi_2_svc", "capability": "TEXT_COMPLETION", "type": "spcs-chat",
            "pluginConfig": {"auth_type": "service", "service_preset": {"mode": "PRESET", "name": "svc-account"},
                             "endpoint": "https://phi-2.example", "route": "__call__"}}


@pytest.fixture
def recorded_dss():
    with responses.RequestsMock() as recorded:
        dataiku_fakes.install_api_client(lambda: DSSClient(DSS_URL, "dss-api-key-not-shown"))
        yield recorded


def _deploy_and_add(**extra):
    return run_macro("spcs-deploy-model", connection="snow", model="zephyr-7b-beta", accept_cost=True,
                     add_to_connection=True, llm_connection="snowflake-llms", **extra).page


def test_it_adds_the_model_to_the_custom_llm_connection_copying_its_auth(dss, account, instant, recorded_dss):
    account.next_statuses = ["RUNNING"]
    recorded_dss.get(CONNECTION_URL, json=_connection([TEMPLATE]))
    saved = recorded_dss.put(CONNECTION_URL, json={})
    page = _deploy_and_add()
    models = json.loads(saved.calls[0].request.body)["params"]["models"]
    assert [m["id"] for m in models] == ["phi_2_svc", "zephyr_7b_beta_svc"]
    added = models[1]
    assert added["type"] == "spcs-chat" and added["pluginConfig"]["service_preset"] == TEMPLATE["pluginConfig"][
        "service_preset"]
    assert added["pluginConfig"]["auth_type"] == "service"  # the copied entry's choice, not the block's default
    assert added["pluginConfig"]["endpoint"] == "https://zephyr_7b_beta_svc-org-acct.snowflakecomputing.app"
    assert added["pluginConfig"]["model_family"] == "zephyr" and models[0] == TEMPLATE
    assert "Added model zephyr_7b_beta_svc in the connection snowflake-llms" in page.text
    assert "dss-api-key-not-shown" not in page.text


def test_a_connection_without_a_model_to_copy_is_left_unchanged(dss, account, instant, recorded_dss):
    account.next_statuses = ["RUNNING"]
    recorded_dss.get(CONNECTION_URL, json=_connection([]))
    page = _deploy_and_add()
    assert "Settings to enter in DSS" in page.text  # the deployment itself is done and shown
    assert "has no spcs-chat model to copy; nothing was changed" in page.text
    assert "Add one model of that type by hand first" in page.text
    assert [call.request.method for call in recorded_dss.calls] == ["GET"]


def test_adding_twice_updates_the_entry(dss, account, instant, recorded_dss):
    account.next_statuses = ["RUNNING"]
    old = {**TEMPLATE, "id": "zephyr_7b_beta_svc", "pluginConfig": {**TEMPLATE["pluginConfig"], "endpoint": "old"}}
    recorded_dss.get(CONNECTION_URL, json=_connection([TEMPLATE, old]))
    saved = recorded_dss.put(CONNECTION_URL, json={})
    page = _deploy_and_add()
    models = json.loads(saved.calls[0].request.body)["params"]["models"]
    assert [m["id"] for m in models] == ["phi_2_svc", "zephyr_7b_beta_svc"]
    assert models[1]["pluginConfig"]["endpoint"].endswith("snowflakecomputing.app")
    assert "Updated model zephyr_7b_beta_svc" in page.text


def test_the_hidden_kind_field_is_ignored_for_a_catalog_model(dss):
    """A hidden field may still carry its last value (inferred): a stale "chat" must not resize an embedding model."""
    page = run_macro("spcs-deploy-model", connection="snow", model="bge-small-en-v1.5", kind="chat").page
    assert estimate(CATALOG["bge-small-en-v1.5"], 3.0).text() in page.text
