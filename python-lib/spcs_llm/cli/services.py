"""``spcs-llm setup-sql | deploy | status | teardown``: the deployment sub-commands and the options each takes.

Each command lists only the options it uses (``--help`` shows nothing that does not apply); the work is in
``handlers.py``. Errors are printed as one line by ``spcs_llm.cli`` (tracebacks only with ``--debug``).
"""

from __future__ import annotations

import argparse
from typing import Any

from spcs_llm.cli.services_run import deploy_command, setup_sql_command, status_command, teardown_command
from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import CATALOG
from spcs_llm.deploy.services.engine import ENGINES

_NAME_HELP = {
    "deployer_role": "role that owns models and services",
    "user_role": "role that calls the endpoints (DSS users / service account)",
    "warehouse": "warehouse for registry SQL",
    "database": "registry database",
    "schema": "registry schema",
    "gpu_pool": "GPU compute pool",
    "gpu_instance_family": "instance family of the GPU pool",
    "cpu_pool": "CPU compute pool (embeddings, remote logging, image builds)",
    "cpu_instance_family": "instance family of the CPU pool",
    "image_repo": "image repository",
    "network_rule": "egress network rule",
    "external_access_integration": "external access integration for image builds",
    "oauth_integration": "Snowflake OAuth security integration for Dataiku",
    "hf_secret": "SECRET holding a Hugging Face token (gated models)",
}
SETUP_NAMES = tuple(_NAME_HELP)
DEPLOY_NAMES = ("user_role", "database", "schema", "gpu_pool", "cpu_pool", "image_repo",
                "external_access_integration", "hf_secret")
STATUS_NAMES = ("database", "schema", "gpu_pool", "cpu_pool")
TEARDOWN_NAMES = ("deployer_role", "user_role", "warehouse", "database", "gpu_pool", "cpu_pool",
                  "external_access_integration", "oauth_integration")


def add_name_options(parser: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    group = parser.add_argument_group("Snowflake object names (defaults match the plugin presets)")
    defaults = DeploymentNames()
    for name in names:
        group.add_argument(f"--{name.replace('_', '-')}", dest=name,
                           help=f"{_NAME_HELP[name]} (default {getattr(defaults, name)})")


def add_session_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Snowflake session")
    group.add_argument(
        "--connection",
        help="connection name in ~/.snowflake/connections.toml (default: SNOWFLAKE_* env or the default entry)",
    )
    group.add_argument("--dss-connection", help="inside DSS: name of a Snowflake connection")


def add_engine_options(parser: argparse.ArgumentParser, *, vllm_only: bool = False) -> None:
    """--engine and the vLLM settings, checked before any connection (engine.py)."""
    group = parser.add_argument_group("inference engine")
    if not vllm_only:
        group.add_argument("--engine", choices=ENGINES,
                           help="vllm (default for chat models on a GPU: JSON schemas enforced, real finish reasons) "
                                "or python (snowflake-ml's server; the default for embedding models)")
    group.add_argument("--max-model-len", type=int, metavar="TOKENS",
                       help="vLLM: longest prompt + answer in tokens (at most the model's context)")
    group.add_argument("--gpu-memory-utilization", type=float, metavar="SHARE",
                       help="vLLM: share of each GPU's memory it may take, 0 < SHARE <= 1 (vLLM's default 0.9)")
    group.add_argument("--tensor-parallel-size", type=int, metavar="GPUS",
                       help="vLLM: GPUs to split the model across (divides the GPUs per node; with --gpus)")
    group.add_argument("--engine-arg", action="append", metavar="ARG",
                       help="vLLM: any other engine argument, e.g. --engine-arg=--enforce-eager (repeatable)")


def add_wait_options(group: Any) -> None:
    """How long to wait for a service to run, how often to look, and the $/credit of the printed settings."""
    group.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for RUNNING (default 3600)")
    group.add_argument("--poll-interval", type=float, default=15.0, help="seconds between status checks")
    group.add_argument("--dollars-per-credit", type=float, default=3.0, help="for the Dataiku settings (default 3)")


def add_dry_run_option(parser: argparse.ArgumentParser, *, alias: str | None = None, what: str = "") -> None:
    """``--dry-run``, the one spelling across the commands (``alias``: an older flag kept working, same meaning)."""
    flags = ["--dry-run", alias] if alias else ["--dry-run"]
    help_text = (f"print what would run ({what or 'SQL and snowflake-ml calls with their arguments'}; <...> marks "
                 "what only the account knows) without opening a Snowflake session; nothing is billed")
    if alias:
        help_text += f". {alias} is the older name of the same flag"
    parser.add_argument(*flags, dest="dry_run", action="store_true", help=help_text)


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")


def register(subparsers: Any) -> None:
    setup = subparsers.add_parser("setup-sql", help="print the Snowflake setup SQL (roles, pools, OAuth, grants)")
    setup.add_argument("--dss-url", help="DSS base URL as users open it, for the OAuth redirect "
                                         "(<dss-url>/dip/api/oauth2-callback); asked for when missing on a terminal")
    add_name_options(setup, SETUP_NAMES)
    setup.add_argument("--allow-unlisted-family", action="store_true",
                       help="accept an instance family newer than the shipped table")
    setup.add_argument("--no-external-access", action="store_true",
                       help="leave out the egress network rule and integration")
    setup.add_argument("--auto-suspend-secs", type=int, default=600, help="compute pool auto-suspend (default 600)")
    setup.add_argument(
        "--functions", nargs="*", metavar="MODEL",
        help="also create SQL service functions for these models (none listed: all catalog models)",
    )
    setup.add_argument("-o", "--output", help="write to this file instead of stdout")
    add_debug_option(setup)
    setup.set_defaults(handler=setup_sql_command)

    deploy = subparsers.add_parser(
        "deploy", help="log a model and serve it (idempotent); prints the Dataiku settings",
        description="For a Hugging Face id outside the catalog, kind, gating and size are read from the Hub; "
                    "--kind and --gated/--not-gated skip that lookup (needed offline).")
    deploy.add_argument("model", help=f"catalog key ({', '.join(CATALOG)}) or a Hugging Face id")
    model = deploy.add_argument_group("model (catalog values or Hub metadata, unless given)")
    model.add_argument("--kind", choices=("chat", "embedding"), help="chat or embedding model")
    model.add_argument("--gated", dest="gated", action="store_true", default=None,
                       help="the Hub repo is gated: Snowflake reads the token from the SECRET")
    model.add_argument("--not-gated", dest="gated", action="store_false", help="the Hub repo is open")
    model.add_argument("--params-billion", type=float, help="parameter count in billions (memory fit)")
    model.add_argument("--family", help="chat family (auto, llama2, zephyr, mistral, phi2, falcon, chatml, raw)")
    model.add_argument("--attach-chat-template", action="store_true",
                       help="attach the family's template (models without one; downloads the model here)")
    model.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    serving = deploy.add_argument_group("serving")
    serving.add_argument("--instance-family", help="instance family the model is sized for (checked against the pool)")
    serving.add_argument("--credits-per-hour", type=float,
                         help="credits/h of an instance family newer than the shipped table")
    serving.add_argument("--gpus", type=int, help="GPUs per instance (0 = CPU)")
    serving.add_argument("--min-instances", type=int, help="0 lets the service suspend when idle")
    serving.add_argument("--max-instances", type=int)
    serving.add_argument("--workers", type=int, help="server workers per instance")
    serving.add_argument("--batch-rows", type=int, help="max rows per inference batch (>= 32)")
    add_engine_options(deploy)
    registry = deploy.add_argument_group("registry and service")
    registry.add_argument("--model-name", help="registry model name")
    registry.add_argument("--service-name", help="service name")
    registry.add_argument("--version", default="V1", help="registry version name (default V1)")
    registry.add_argument("--replace", action="store_true", help="drop and recreate the service")
    registry.add_argument("--replace-version", action="store_true",
                          help="drop and re-log the version (and its service)")
    registry.add_argument("--caller-role", help="role granted the service role (default: --user-role)")
    registry.add_argument("--no-external-access", action="store_true",
                          help="build the image without the egress integration")
    add_wait_options(registry)
    add_dry_run_option(deploy)
    add_name_options(deploy, DEPLOY_NAMES)
    add_session_options(deploy)
    add_debug_option(deploy)
    deploy.set_defaults(handler=deploy_command)

    status = subparsers.add_parser("status", help="list the services, what the pools bill now, per day and month")
    status.add_argument("--json", action="store_true")
    status.add_argument("--dollars-per-credit", type=float, default=3.0, help="default 3")
    status.add_argument("--family-rate", action="append", metavar="FAMILY=CREDITS",
                        help="credits/h of a family the shipped table lacks or prices differently (repeatable)")
    status.add_argument("--history-days", type=int, default=0, metavar="DAYS",
                        help="also show what the pools billed over the last DAYS days (Snowflake's metering view)")
    add_name_options(status, STATUS_NAMES)
    add_session_options(status)
    add_debug_option(status)
    status.set_defaults(handler=status_command)

    teardown = subparsers.add_parser("teardown", help="print (or run) the SQL that stops all billing",
                                     description="Without --execute (or with --dry-run) it prints the SQL and opens "
                                                 "no Snowflake session.")
    teardown.add_argument("--keep-models", action="store_true", help="keep the database with the registered models")
    teardown.add_argument("--execute", action="store_true",
                          help="run it through a Snowflake session (needs ACCOUNTADMIN); asks for confirmation")
    teardown.add_argument("--yes", action="store_true", help="with --execute: do not ask (needed without a terminal)")
    add_dry_run_option(teardown, what="the teardown SQL, as without --execute")
    teardown.add_argument("-o", "--output", help="write to this file instead of stdout")
    add_name_options(teardown, TEARDOWN_NAMES)
    add_session_options(teardown)
    add_debug_option(teardown)
    teardown.set_defaults(handler=teardown_command)
