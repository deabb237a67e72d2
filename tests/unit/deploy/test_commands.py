"""The spcs-llm CLI sub-commands, the Dataiku connection block, and secrets staying out of the output."""

from __future__ import annotations

import json
import logging

import fake_snowflake
import pytest
from snowflake.snowpark.exceptions import SnowparkSQLException

from spcs_llm.cli import main
from spcs_llm.core.cost import instance_family_rates
from spcs_llm.deploy import CATALOG, DeploymentNames, connection_block, connection_settings, resolve_model, setup_sql
from spcs_llm.deploy.services.connection import DeployedModel
from spcs_llm.deploy.services.engine import EngineOptions
from spcs_llm.deploy.session import SESSION_FACTORY_ENV, open_session


@pytest.fixture
def cli_session(monkeypatch, session, account):
    """The CLI opens its session through SPCS_LLM_SESSION_FACTORY, which hands it this test's fake."""
    account.next_statuses = ["RUNNING"]
    monkeypatch.setenv(SESSION_FACTORY_ENV, "fake_snowflake:session_from_environment")
    fake_snowflake.ACTIVE.append(session)
    yield session
    fake_snowflake.ACTIVE.remove(session)


def test_setup_sql_prints_the_rendered_script(capsys):
    assert main(["setup-sql", "--dss-url", "https://dss.acme.io"]) == 0
    assert capsys.readouterr().out == setup_sql(DeploymentNames.build(dss_url="https://dss.acme.io"))


def test_setup_sql_without_a_dss_url_is_refused_off_a_terminal(capsys):
    assert main(["setup-sql"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: setup-sql needs the DSS URL") and "--dss-url" in err


def test_setup_sql_asks_for_the_dss_url_on_a_terminal(monkeypatch, capsys):
    from spcs_llm.cli import services_run as handlers

    monkeypatch.setattr(handlers, "interactive", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "https://dss.acme.io/")
    assert main(["setup-sql"]) == 0
    assert capsys.readouterr().out == setup_sql(DeploymentNames.build(dss_url="https://dss.acme.io"))


def test_setup_sql_checks_the_pool_families(capsys):
    assert main(["setup-sql", "--dss-url", "https://d.io", "--gpu-instance-family", "GPU_FOO"]) == 1
    assert "not a known SPCS instance family" in capsys.readouterr().err
    assert main(["setup-sql", "--dss-url", "https://d.io", "--gpu-instance-family", "GPU_FOO",
                 "--allow-unlisted-family"]) == 0
    assert "INSTANCE_FAMILY = GPU_FOO" in capsys.readouterr().out


def test_setup_sql_with_functions_for_all_catalog_models(capsys):
    assert main(["setup-sql", "--dss-url", "https://dss.acme.io", "--functions"]) == 0
    out = capsys.readouterr().out
    assert all(f"SERVICE = SPCS_LLM.MODELS.{spec.service_name}" in out for spec in CATALOG.values())


def _form_lines(text: str) -> dict[str, str]:
    """``    Label: value`` lines of a printed settings block."""
    return {label.strip(): value.strip() for label, value in
            (line.split(": ", 1) for line in text.splitlines() if line.startswith("    ") and ": " in line)}


def test_deploy_prints_the_dss_settings_with_the_labels_dss_shows(cli_session, account, capsys):
    assert main(["deploy", "zephyr-7b-beta", "--poll-interval", "0"]) == 0
    out = capsys.readouterr().out
    assert _form_lines(out) == {
        "Endpoint": "https://zephyr_7b_beta_svc-org-acct.snowflakecomputing.app", "Method route": "__call__",
        "Service protocol": "OpenAI-chat rows (messages → choices)", "Model family (client-side template)": "Zephyr",
        "Inference engine": "vLLM",
        "Compute pool instance family": "GPU_NV_S (0.57 credits/h, 1× A10G 24 GB; AWS only)",
        "Dollars per credit": "3.0", "Max parallelism": "32"}
    assert "Add model > SPCS chat model" in out
    assert "'Snowflake OAuth (per user)' preset" in out and "'Snowflake service account' preset" in out
    assert account.grants == ["ZEPHYR_7B_BETA_SVC->SPCS_LLM_USER"]


def test_status_lists_deployed_services_and_what_the_pools_bill(cli_session, account, capsys):
    account.add_service("PHI_2", "V1", "PHI_2_SVC", ["RUNNING"])
    account.pool_columns["SPCS_LLM_GPU_POOL"] = {"state": "ACTIVE", "active_nodes": 1}
    assert main(["status", "--dollars-per-credit", "2"]) == 0
    out = capsys.readouterr().out
    assert "SPCS_LLM.MODELS.PHI_2_SVC" in out
    rate = instance_family_rates()["GPU_NV_S"]
    assert f"Billing now: {rate:.2f} credits/h (about ${rate * 2:.2f}/h at $2/credit)" in out
    assert "spcs-llm teardown" in out


def test_status_with_every_pool_suspended_says_nothing_bills(cli_session, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "No services." in out and "Billing now: 0.00 credits/h" in out and "teardown" not in out


def test_status_json_has_services_and_pools(cli_session, account, capsys):
    account.add_service("PHI_2", "V1", "PHI_2_SVC", ["RUNNING"])
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["service"] for row in report["services"]] == ["SPCS_LLM.MODELS.PHI_2_SVC"]
    assert {pool["pool"]: pool["credits_per_hour"] for pool in report["pools"]} == {
        "SPCS_LLM_GPU_POOL": 0.0, "SPCS_LLM_CPU_POOL": 0.0}


def test_teardown_prints_by_default_and_runs_with_execute_and_yes(cli_session, capsys):
    assert main(["teardown"]) == 0
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL;" in capsys.readouterr().out
    assert cli_session.statements == []
    assert main(["teardown", "--execute", "--keep-models", "--yes"]) == 0
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in cli_session.statements
    assert not any(s.startswith("DROP DATABASE") for s in cli_session.statements)


def test_a_teardown_that_stops_midway_lists_what_ran_and_what_did_not(cli_session, capsys):
    def refuse(_match):
        raise SnowparkSQLException("003001 (42501): SQL access control error: Insufficient privileges.")

    cli_session._handlers.insert(0, (r"^DROP DATABASE ", refuse))
    assert main(["teardown", "--execute", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "> DROP WAREHOUSE IF EXISTS SPCS_LLM_WH" in err and "> DROP DATABASE" not in err
    assert "Teardown stopped: DROP DATABASE IF EXISTS SPCS_LLM failed" in err
    assert "did not run" in err and "Fix: Fix the cause" in err


def test_a_failed_deploy_exits_1_with_the_fix_and_the_logs(cli_session, account, capsys):
    account.next_statuses = ["FAILED"]
    account.next_logs = "ValueError: model weights not found"
    assert main(["deploy", "zephyr-7b-beta", "--poll-interval", "0"]) == 1
    err = capsys.readouterr().err
    assert "error: Service SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC is FAILED." in err and "Fix:" in err
    assert "ValueError: model weights not found" in err


def test_secrets_from_the_session_config_never_reach_output_or_logs(cli_session, account, capsys, caplog, monkeypatch):
    password = "s3cret-Passw0rd-for-tests"
    monkeypatch.delenv(SESSION_FACTORY_ENV)
    import snowflake.snowpark

    builder = type("Builder", (), {"configs": lambda self, c: self, "create": lambda self: cli_session})()
    monkeypatch.setattr(snowflake.snowpark.Session, "builder", builder)
    assert open_session(config={"account": "acme", "user": "me", "password": password}) is cli_session
    account.next_statuses = ["FAILED"]
    account.next_logs = f"connecting as me/{password} failed"  # a container echoing its environment
    with caplog.at_level(logging.DEBUG):
        monkeypatch.setenv(SESSION_FACTORY_ENV, "fake_snowflake:session_from_environment")
        assert main(["deploy", "zephyr-7b-beta", "--poll-interval", "0"]) == 1
    captured = capsys.readouterr()
    assert "connecting as me/" in captured.err
    assert password not in captured.err + captured.out + caplog.text


def test_connection_settings_for_an_embedding_model_use_the_plugin_parameter_names():
    deployed = DeployedModel(spec=CATALOG["all-minilm-l6-v2"], model_fqn="SPCS_LLM.MODELS.ALL_MINILM_L6_V2",
                             version="V1", service_fqn="SPCS_LLM.MODELS.ALL_MINILM_L6_V2_SVC", status="RUNNING",
                             ingress_host="abc-org-acct.snowflakecomputing.app", instance_family="CPU_X64_S",
                             caller_role="SPCS_LLM_USER")
    settings = connection_settings(deployed, auth_type="service", dollars_per_credit=2.5)
    assert settings == {"endpoint": "https://abc-org-acct.snowflakecomputing.app", "route": "encode",
                        "protocol": "encode", "instance_family": "CPU_X64_S", "dollars_per_credit": 2.5,
                        "max_parallelism": 32, "rows_per_request": 64, "auth_type": "service"}
    block = connection_block(deployed)
    assert "Model family" not in block and _form_lines(block)["Rows per request"] == "64"


def test_an_unlisted_family_carries_its_rate_into_the_settings():
    spec = resolve_model("phi-2", instance_family="GPU_NEW_FAMILY", credits_per_hour=0.9)
    deployed = DeployedModel(spec=spec, model_fqn="M", version="V1", service_fqn="S", status="RUNNING",
                             ingress_host="h-org-acct.snowflakecomputing.app", instance_family="GPU_NEW_FAMILY",
                             caller_role="SPCS_LLM_USER")
    assert connection_settings(deployed)["credits_per_hour"] == 0.9
    assert _form_lines(connection_block(deployed))["Credits per hour (override)"] == "0.9"


def test_teardown_execute_without_yes_refuses_off_a_terminal_and_drops_nothing(cli_session, capsys):
    assert main(["teardown", "--execute"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--yes" in err
    assert cli_session.statements == []


@pytest.mark.parametrize(("answer", "code"), [("spcs_llm", 0), ("yes", 1)])
def test_teardown_execute_asks_for_the_database_name_on_a_terminal(cli_session, monkeypatch, capsys, answer, code):
    from spcs_llm.cli import services_run as handlers

    prompts = []
    monkeypatch.setattr(handlers, "interactive", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    assert main(["teardown", "--execute"]) == code
    assert "SPCS_LLM" in prompts[0] and "database" in prompts[0]
    assert bool(cli_session.statements) == (code == 0)


def test_arguments_are_checked_before_any_connection(monkeypatch, capsys):
    opened = []
    monkeypatch.setattr("spcs_llm.cli.services_run.session_for", lambda args: opened.append(args))
    assert main(["deploy", "phi-2", "--instance-family", "GPU_FOO"]) == 1
    assert main(["deploy", "phi-2", "--gpu-pool", "bad-name"]) == 1
    assert main(["status", "--family-rate", "GPU_X"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") and "Fix:" in line for line in err)
    assert opened == []


def test_an_unexpected_error_is_one_line_and_a_traceback_only_with_debug(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("socket closed\nmore detail")

    monkeypatch.setattr("spcs_llm.cli.services_run.session_for", broken)
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err == "error: RuntimeError: socket closed Fix: run again with --debug to see where it failed.\n"
    with pytest.raises(RuntimeError):
        main(["status", "--debug"])


def test_no_configured_connection_is_one_line_naming_the_fix(monkeypatch, capsys):
    import snowflake.snowpark

    def no_default():
        raise snowflake.connector.errors.Error(
            "Default connection with name 'default' cannot be found, known ones are []")

    import snowflake.connector

    monkeypatch.delenv(SESSION_FACTORY_ENV, raising=False)
    monkeypatch.delenv("SNOWFLAKE_ACCOUNT", raising=False)
    builder = type("Builder", (), {"configs": lambda self, c: self, "create": lambda self: no_default()})()
    monkeypatch.setattr(snowflake.snowpark.Session, "builder", builder)
    for command in (["status"], ["deploy", "phi-2"], ["teardown", "--execute", "--yes"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "No Snowflake session" in err and "--connection" in err


@pytest.mark.parametrize(("command", "present", "absent"), [
    ("deploy", ["--kind", "--gated", "--not-gated", "--gpu-pool", "--hf-secret", "--credits-per-hour", "--engine",
                "--max-model-len", "--gpu-memory-utilization", "--tensor-parallel-size", "--engine-arg"],
     ["--dss-url", "--warehouse", "--oauth-integration", "--network-rule", "--yes", "--vllm", "--vllm-arg"]),
    ("status", ["--gpu-pool", "--family-rate", "--connection"], ["--dss-url", "--hf-secret", "--image-repo", "--kind"]),
    ("teardown", ["--yes", "--execute", "--oauth-integration"], ["--dss-url", "--hf-secret", "--kind", "--sql"]),
    ("setup-sql", ["--dss-url", "--gpu-instance-family"], ["--connection", "--yes", "--kind"]),
])
def test_each_command_help_lists_only_what_applies(capsys, command, present, absent):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in present)
    assert not [flag for flag in absent if f"{flag} " in text or f"{flag}\n" in text]


def test_status_projects_what_the_pools_cost_per_day_and_month(cli_session, account, capsys):
    account.pool_columns["SPCS_LLM_GPU_POOL"] = {"state": "IDLE", "idle_nodes": 1, "auto_suspend_secs": 600}
    account.pool_columns["SPCS_LLM_CPU_POOL"] = {"state": "ACTIVE", "active_nodes": 1, "auto_suspend_secs": 0}
    assert main(["status", "--dollars-per-credit", "2"]) == 0
    out = capsys.readouterr().out
    per_hour = instance_family_rates()["GPU_NV_S"] + instance_family_rates()["CPU_X64_S"]
    assert f"If left as it is: {per_hour * 24:.1f} credits/day (${per_hour * 48:,.0f})" in out
    assert f"{per_hour * 730:,.0f} credits/month (${per_hour * 1460:,.0f})" in out
    assert "never" in out and "AUTO_SUSPEND_SECS = 600" in out
    gpu_line = next(line for line in out.splitlines() if line.startswith("SPCS_LLM_GPU_POOL"))
    assert f"{instance_family_rates()['GPU_NV_S'] * 600 / 3600:.3f} cr" in gpu_line


def test_status_prices_an_unlisted_family_from_the_command_line(cli_session, account, capsys):
    account.compute_pools["SPCS_LLM_GPU_POOL"] = "GPU_NEW_FAMILY"
    account.pool_columns["SPCS_LLM_GPU_POOL"] = {"state": "ACTIVE", "active_nodes": 1}
    assert main(["status"]) == 0
    assert "not priced: SPCS_LLM_GPU_POOL" in capsys.readouterr().out
    assert main(["status", "--family-rate", "gpu_new_family=2.5"]) == 0
    assert "Billing now: 2.50 credits/h" in capsys.readouterr().out


def test_status_shows_what_the_pools_billed_from_snowflakes_metering(cli_session, account, capsys):
    account.usage_history = {"SPCS_LLM_GPU_POOL": (4.56, 8), "OTHER_POOL": (99.0, 1)}
    assert main(["status", "--history-days", "7", "--dollars-per-credit", "2"]) == 0
    out = capsys.readouterr().out
    assert "Billed over the last 7 day(s)" in out and "4.56 credits ($9.12)" in out
    assert "SPCS_LLM_GPU_POOL" in out and "8 billed hour(s)" in out and "OTHER_POOL" not in out
    history_query = next(s for s in cli_session.statements if "SNOWPARK_CONTAINER_SERVICES_HISTORY" in s)
    assert "DATEADD(day, -7," in history_query


def test_status_history_without_the_privilege_is_a_note_not_a_failure(cli_session, capsys):
    assert main(["status", "--history-days", "1"]) == 0
    assert "GRANT IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE" in capsys.readouterr().out
    assert main(["status", "--history-days", "-1"]) == 1


def test_a_kept_chat_service_says_its_engine_is_the_one_it_was_created_with(cli_session, account, capsys):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    assert main(["deploy", "zephyr-7b-beta", "--poll-interval", "0"]) == 0
    assert "kept the running service SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC" in capsys.readouterr().err
    assert account.deploy_specs == []


def test_a_chat_model_served_with_vllm_tells_dss_its_engine():
    def deployed(vllm: bool) -> DeployedModel:
        spec = resolve_model("zephyr-7b-beta", engine=EngineOptions("vllm" if vllm else "python"))
        return DeployedModel(spec=spec, model_fqn="M", version="V1", service_fqn="S", status="RUNNING",
                             ingress_host="h-org-acct.snowflakecomputing.app", instance_family="GPU_NV_S",
                             caller_role="SPCS_LLM_USER")

    assert connection_settings(deployed(True))["engine"] == "vllm"
    assert connection_settings(deployed(False))["engine"] == "python"
    assert _form_lines(connection_block(deployed(True)))["Inference engine"].lower().startswith("vllm")
