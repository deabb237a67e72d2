"""Deploy LLMs and embedding models to Snowpark Container Services with the snowflake-ml registry (2.6 API).

Used by the ``spcs-llm`` CLI (``setup-sql``, ``deploy``, ``status``, ``teardown``…), the companion notebook, and in
DSS by the macros and the Flow recipe. snowflake-ml and Snowpark (in the plugin's code env and in
``notebooks/requirements.txt``) are imported only when a deployment runs (a missing one is a
``DeploymentStackMissingError`` naming the install), so importing this package is cheap and the connectors, which
share the plugin's code env, never load them.
"""

from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import CATALOG, ModelSpec, resolve_model
from spcs_llm.deploy.services.connection import DeployedModel, connection_block, connection_settings
from spcs_llm.deploy.services.deployer import Deployer, DeployOptions
from spcs_llm.deploy.services.lifecycle import WaitSettings
from spcs_llm.deploy.services.sql import service_functions_sql, setup_sql, teardown_sql
from spcs_llm.deploy.session import open_session

__all__ = [
    "CATALOG",
    "DeployOptions",
    "DeployedModel",
    "Deployer",
    "DeploymentNames",
    "ModelSpec",
    "WaitSettings",
    "connection_block",
    "connection_settings",
    "open_session",
    "resolve_model",
    "service_functions_sql",
    "setup_sql",
    "teardown_sql",
]
