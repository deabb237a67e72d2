"""A missing or broken Snowflake connection is one line in our words: which source was tried, what is wrong, how to
configure one (connections.toml, SNOWFLAKE_* variables, --connection, the DSS connection); never the connector's
raw text and never a secret. And every typed error has a full stop before "Fix:"."""

from __future__ import annotations

import pytest
import snowflake.connector
import snowflake.snowpark

from spcs_llm.cli import main
from spcs_llm.core.errors import ConfigurationError, DeploymentError, SpcsLlmError
from spcs_llm.deploy.session import SESSION_FACTORY_ENV, open_session

RAW = "Default connection with name 'default' cannot be found, known ones are []"


@pytest.fixture
def failing_builder(monkeypatch):
    """Session.builder whose create() raises what the test sets; records the configs it was given."""
    state = {"error": snowflake.connector.errors.Error(RAW), "configs": []}

    class Builder:
        def configs(self, options):
            state["configs"].append(dict(options))
            return self

        def create(self):
            raise state["error"]

    monkeypatch.delenv(SESSION_FACTORY_ENV, raising=False)
    for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(snowflake.snowpark.Session, "builder", Builder())
    return state


def test_no_default_connection_is_our_sentence_not_the_connectors(failing_builder, capsys):
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    line = err.strip()
    assert "known ones are" not in line and "cannot be found" not in line
    assert line.startswith("error: No Snowflake session could be opened from the default entry of connections.toml")
    assert "that connection is not configured. Fix: " in line
    for needle in ("connections.toml", "SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD", "--connection",
                   "--dss-connection", "DSS Snowflake connection"):
        assert needle in line


def test_a_named_connection_that_is_not_there_is_named(failing_builder):
    failing_builder["error"] = snowflake.connector.errors.Error("Invalid connection_name 'prod', known ones are []")
    with pytest.raises(DeploymentError) as caught:
        open_session(connection_name="prod")
    assert caught.value.message == ("No Snowflake session could be opened from the connections.toml entry 'prod' "
                                    "(--connection): that connection is not configured.")
    assert "known ones" not in str(caught.value)


def test_refused_credentials_from_the_environment_leak_no_secret(failing_builder, monkeypatch):
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "acme-xy12345")
    monkeypatch.setenv("SNOWFLAKE_USER", "deployer")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "hunter2-s3cret")
    failing_builder["error"] = snowflake.connector.errors.DatabaseError(
        "250001: Incorrect username or password was specified (password=hunter2-s3cret).")
    with pytest.raises(DeploymentError) as caught:
        open_session()
    text = str(caught.value)
    assert "hunter2-s3cret" not in text and "Incorrect username" not in text
    assert caught.value.message == ("No Snowflake session could be opened from the SNOWFLAKE_* environment "
                                    "variables: Snowflake refused its credentials.")
    assert failing_builder["configs"][0]["password"] == "hunter2-s3cret"  # the env was used, not shown


def test_an_unknown_connector_failure_names_only_its_type(failing_builder):
    failing_builder["error"] = RuntimeError("internal detail 0xdeadbeef")
    with pytest.raises(DeploymentError) as caught:
        open_session(connection_name="dev")
    assert "0xdeadbeef" not in str(caught.value)
    assert caught.value.message.endswith("the connector failed (RuntimeError).")


def test_dss_connection_outside_dss_says_so(monkeypatch):
    monkeypatch.delenv(SESSION_FACTORY_ENV, raising=False)
    monkeypatch.setitem(__import__("sys").modules, "dataiku", None)  # import dataiku.snowpark fails
    with pytest.raises(DeploymentError) as caught:
        open_session(dss_connection="SNOWFLAKE_PROD")
    assert "the DSS connection 'SNOWFLAKE_PROD'" in caught.value.message
    assert "inside DSS only" in caught.value.message


@pytest.mark.parametrize(("message", "shown"), [
    ("known ones are []", "known ones are []. Fix: do it"),
    ("Done.", "Done. Fix: do it"),
    ("Really?", "Really? Fix: do it"),
    ("trailing space ", "trailing space. Fix: do it"),
])
def test_the_message_ends_with_a_full_stop_before_fix(message, shown):
    assert str(SpcsLlmError(message, fix="do it")) == shown
    assert str(ConfigurationError("no fix", fix="")) == "no fix"
