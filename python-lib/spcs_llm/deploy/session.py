"""Open a Snowpark session: from a DSS Snowflake connection, a connections.toml entry, a dict, or the environment.

``SPCS_LLM_SESSION_FACTORY=package.module:function`` replaces all of that with a callable returning a session.
It exists so that the notebook and the CLI can be executed end to end against a recording fake in the test
suite (tests/unit/deploy/); it is also the hook for sites with their own session helper.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.core.redaction import get_logger, redact_library_records, register_secret
from spcs_llm.deploy.dependencies import require

log = get_logger(__name__)

SESSION_FACTORY_ENV = "SPCS_LLM_SESSION_FACTORY"
NO_SESSION_FIX = (
    "Configure a Snowflake connection: an entry in connections.toml (~/.snowflake/connections.toml, or "
    "$SNOWFLAKE_HOME/connections.toml) passed with --connection <name> or named by default_connection_name; or the "
    "variables SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PASSWORD (or SNOWFLAKE_AUTHENTICATOR / "
    "SNOWFLAKE_PRIVATE_KEY_FILE / SNOWFLAKE_TOKEN); inside DSS, pass --dss-connection with the name of a DSS "
    "Snowflake connection. Add -v to see the connector's own message."
)
_SECRET_KEYS = ("password", "token", "private_key_file_pwd", "private_key_passphrase", "passcode")
_ENV_KEYS = {
    "account": "SNOWFLAKE_ACCOUNT",
    "user": "SNOWFLAKE_USER",
    "password": "SNOWFLAKE_PASSWORD",
    "authenticator": "SNOWFLAKE_AUTHENTICATOR",
    "private_key_file": "SNOWFLAKE_PRIVATE_KEY_FILE",
    "token": "SNOWFLAKE_TOKEN",
    "role": "SNOWFLAKE_ROLE",
    "warehouse": "SNOWFLAKE_WAREHOUSE",
    "database": "SNOWFLAKE_DATABASE",
    "schema": "SNOWFLAKE_SCHEMA",
}


def _from_factory(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"{SESSION_FACTORY_ENV}={spec!r} is not of the form 'package.module:function'.",
            fix=f"Set {SESSION_FACTORY_ENV} to 'package.module:function', or unset it.",
        )
    factory = getattr(importlib.import_module(module_name), attribute)
    log.info("Using the Snowpark session from %s", spec)
    return factory()


def connection_config_from_env() -> dict[str, str]:
    """Connection parameters from SNOWFLAKE_* variables (empty when SNOWFLAKE_ACCOUNT is unset)."""
    if not os.environ.get("SNOWFLAKE_ACCOUNT"):
        return {}
    return {key: os.environ[var] for key, var in _ENV_KEYS.items() if os.environ.get(var)}


def open_session(
    *,
    connection_name: str | None = None,
    config: Mapping[str, Any] | None = None,
    dss_connection: str | None = None,
) -> Any:
    """A Snowpark ``Session``, first match wins: test/site factory, DSS connection, dict, named connection, env.

    With nothing given, SNOWFLAKE_* variables are used when SNOWFLAKE_ACCOUNT is set, else the default entry of
    ``~/.snowflake/connections.toml`` (Snowpark's own lookup; the folder moves with SNOWFLAKE_HOME, snowflake-connector
    ``constants.py``). Any failure to connect is one DeploymentError in our words: where the session was looked
    for, what is wrong with it, and how to configure one; the connector's own text goes to the DEBUG log only.
    """
    redact_library_records("snowflake")  # snowflake-ml streams container logs, which may echo credentials
    factory = os.environ.get(SESSION_FACTORY_ENV)
    if factory:
        return _from_factory(factory)
    try:
        return _create(connection_name, config, dss_connection)
    except DeploymentError:
        raise
    except Exception as exc:  # noqa: BLE001 - connector, Snowpark and DSS errors alike: one line in our words
        # The connector's text is logged at DEBUG only (-v): it may quote a connection file or a host, and its
        # wording ("Default connection with name 'default' cannot be found, known ones are []") names no fix.
        log.debug("Snowflake session failed: %s: %s", type(exc).__name__,
                  (str(exc).strip().splitlines() or [""])[0])
        raise DeploymentError(no_session_message(exc, connection_name=connection_name, config=config,
                                                 dss_connection=dss_connection), fix=NO_SESSION_FIX) from None


def _source(connection_name: str | None, config: Mapping[str, Any] | None, dss_connection: str | None) -> str:
    """Where the session was looked for, as the user named it."""
    if dss_connection:
        return f"the DSS connection {dss_connection!r}"
    if config:
        return "the given connection settings"
    if connection_name:
        return f"the connections.toml entry {connection_name!r} (--connection)"
    if connection_config_from_env():
        return "the SNOWFLAKE_* environment variables"
    return "the default entry of connections.toml (no --connection given, SNOWFLAKE_ACCOUNT not set)"


def no_session_message(exc: BaseException, *, connection_name: str | None = None,
                       config: Mapping[str, Any] | None = None, dss_connection: str | None = None) -> str:
    """One sentence in our words: which source was tried and what is wrong with it; the raw text is not shown."""
    source = _source(connection_name, config, dss_connection)
    text = str(exc).lower()
    if dss_connection and isinstance(exc, ImportError):
        what = "the dataiku package is not importable here (--dss-connection works inside DSS only)"
    elif "cannot be found" in text or "known ones are" in text or "no default connection" in text:
        what = "that connection is not configured"
    elif "password" in text or "authenticat" in text or "jwt" in text or "token" in text or "250001" in text:
        what = "Snowflake refused its credentials"
    elif "account" in text and ("missing" in text or "required" in text or "must be" in text):
        what = "it names no Snowflake account"
    elif "timed out" in text or "timeout" in text or "resolve" in text or "connection refused" in text \
            or "could not connect" in text or "failed to connect" in text:
        what = "Snowflake could not be reached (network, proxy or account name)"
    else:
        what = f"the connector failed ({type(exc).__name__})"
    return f"No Snowflake session could be opened from {source}: {what}."


def _create(connection_name: str | None, config: Mapping[str, Any] | None, dss_connection: str | None) -> Any:
    if dss_connection:
        # Inferred: dataiku.snowpark.DkuSnowpark().get_session(connection_name) builds a Snowpark session from a DSS
        # Snowflake connection (Dataiku developer docs); not verified against a live DSS here.
        from dataiku.snowpark import DkuSnowpark

        return DkuSnowpark().get_session(dss_connection)
    Session = require("snowflake.snowpark").Session  # noqa: N806 - the class, imported lazily
    if config:
        for key in _SECRET_KEYS:
            register_secret(str(config.get(key) or ""))
        return Session.builder.configs(dict(config)).create()
    if connection_name:
        return Session.builder.configs({"connection_name": connection_name}).create()
    from_env = connection_config_from_env()
    for key in _SECRET_KEYS:
        register_secret(from_env.get(key))
    if from_env:
        return Session.builder.configs(from_env).create()
    return Session.builder.create()
