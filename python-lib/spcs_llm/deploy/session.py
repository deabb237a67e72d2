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

from ..errors import ConfigurationError, DeploymentError
from ..redaction import get_logger, redact_library_records, register_secret
from .dependencies import require

log = get_logger(__name__)

SESSION_FACTORY_ENV = "SPCS_LLM_SESSION_FACTORY"
NO_SESSION_FIX = (
    "Pass --connection <name> (an entry of ~/.snowflake/connections.toml), or set SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER "
    "and SNOWFLAKE_PASSWORD (or SNOWFLAKE_AUTHENTICATOR / SNOWFLAKE_PRIVATE_KEY_FILE); inside DSS pass --dss-connection."
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
    ``~/.snowflake/connections.toml`` (Snowpark's own lookup). Any failure to connect is one DeploymentError that
    says where the session was looked for.
    """
    redact_library_records("snowflake")  # snowflake-ml streams container logs, which may echo credentials
    factory = os.environ.get(SESSION_FACTORY_ENV)
    if factory:
        return _from_factory(factory)
    try:
        return _create(connection_name, config, dss_connection)
    except DeploymentError:
        raise
    except Exception as exc:  # noqa: BLE001 - connector, Snowpark and DSS errors alike: one line with the fix
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DeploymentError(f"No Snowflake session could be opened: {first_line}", fix=NO_SESSION_FIX) from None


def _create(connection_name: str | None, config: Mapping[str, Any] | None, dss_connection: str | None) -> Any:
    if dss_connection:
        # Inferred: dataiku.snowpark.DkuSnowpark().get_session(connection_name) builds a Snowpark session from a DSS
        # Snowflake connection (Dataiku developer docs); not verified against a live DSS here.
        from dataiku.snowpark import DkuSnowpark  # type: ignore[import-not-found]

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
