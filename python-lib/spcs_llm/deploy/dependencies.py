"""The deployment stack (snowflake-ml-python, Snowpark) is imported lazily, only when a deployment step runs (the
connectors share the plugin's code env and never pay for it), and a missing package names how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from spcs_llm.core.errors import DeploymentError

INSTALL_HINT = "pip install -r notebooks/requirements.txt"


class DeploymentStackMissingError(DeploymentError):
    """snowflake-ml-python / snowpark (or another deployment-only package) is not installed in this Python."""

    default_fix = (
        f"Install the deployment requirements: {INSTALL_HINT} (from a checkout of the plugin); in DSS, update the "
        "plugin's code env (Administration > Plugins > spcs-llm), whose definition lists them."
    )


LORA_INSTALL_HINT = "pip install -r notebooks/requirements-lora.txt"


def require(module: str, *, purpose: str = "Deploying models", install: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or a DeploymentStackMissingError naming the install command."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise DeploymentStackMissingError(
            f"{purpose} needs the Python package {exc.name!r}, which is not installed here.",
            fix=f"Install it: {install}." if install else None,
        ) from None


def sql_error_type(*, purpose: str = "Deploying models") -> type[Exception]:
    """Snowpark's SQL error type, imported only when a Snowflake call is made (the deployment stack is optional)."""
    return require("snowflake.snowpark.exceptions", purpose=purpose).SnowparkSQLException
