"""``spcs-llm setup-sql | deploy | status | teardown``: the deployment sub-commands of the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import SpcsLlmError
from .catalog import CATALOG, resolve_model
from .names import DeploymentNames
from .pools import PoolBilling

_NAME_OPTIONS = {
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
    "dss_url": "DSS base URL (OAuth redirect <dss-url>/dip/api/oauth2-callback)",
}


def _add_name_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Snowflake object names (defaults match the plugin presets)")
    for name, help_text in _NAME_OPTIONS.items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, help=f"{help_text} (default {getattr(DeploymentNames(), name)})")


def _add_session_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Snowflake session")
    group.add_argument(
        "--connection",
        help="connection name in ~/.snowflake/connections.toml (default: SNOWFLAKE_* env or the default entry)",
    )
    group.add_argument("--dss-connection", help="inside DSS: name of a Snowflake connection")


def _names(args: argparse.Namespace) -> DeploymentNames:
    return DeploymentNames.build(**{name: getattr(args, name, None) for name in _NAME_OPTIONS})


def _session(args: argparse.Namespace) -> Any:
    from .session import open_session

    return open_session(connection_name=args.connection, dss_connection=args.dss_connection)


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"Wrote {output}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def _guarded(handler: Any) -> Any:
    """Print typed errors (message + fix, redacted) instead of a traceback; exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args) or 0)
        except SpcsLlmError as exc:
            print(f"error: {exc}", file=sys.stderr)
            logs = getattr(exc, "logs", "")
            if logs:
                print("---- service logs ----", file=sys.stderr)
                print(logs, file=sys.stderr)
            return 1

    return run


def _setup_sql(args: argparse.Namespace) -> int:
    from .sql import service_functions_sql, setup_sql

    names = _names(args)
    text = setup_sql(names, external_access=not args.no_external_access, auto_suspend_secs=args.auto_suspend_secs)
    if args.functions is not None:  # bare --functions: every catalog model
        text += "\n" + service_functions_sql(names, [resolve_model(key) for key in args.functions or CATALOG])
    _write(text, args.output)
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from .connection import connection_block
    from .deployer import Deployer, DeployOptions
    from .services import WaitSettings

    spec = resolve_model(
        args.model,
        kind=args.kind,
        family=args.family,
        attach_chat_template=True if args.attach_chat_template else None,
        gated=True if args.gated else None,
        instance_family=args.instance_family,
        gpu_count=args.gpus,
        min_instances=args.min_instances,
        max_instances=args.max_instances,
        num_workers=args.workers,
        max_batch_rows=args.batch_rows,
        vllm_args=tuple(args.vllm_arg or ()) if args.vllm else None,
        revision=args.revision,
        model_name=args.model_name,
        service_name=args.service_name,
    )
    options = DeployOptions(
        version_name=args.version.upper(),
        replace_version=args.replace_version,
        replace_service=args.replace or args.replace_version,
        caller_role=args.caller_role,
        external_access=not args.no_external_access,
        wait=WaitSettings(timeout_s=args.timeout, poll_interval_s=args.poll_interval),
    )
    deployed = Deployer(_session(args), _names(args)).deploy(spec, options)
    print(connection_block(deployed, dollars_per_credit=args.dollars_per_credit))
    return 0


def _status(args: argparse.Namespace) -> int:
    from .deployer import Deployer

    deployer = Deployer(_session(args), _names(args))
    services = deployer.status()
    pools = deployer.pools(services)
    if args.json:
        print(json.dumps({"services": services, "pools": [pool.as_dict() for pool in pools]}, indent=2))
        return 0
    print("\n".join(f"{row['service']:<48} {row['status']:<12} {row['ingress_host'] or '-'}" for row in services)
          or "No services.")
    print(_billing_report(pools, args.dollars_per_credit))
    return 0


def _billing_report(pools: list[PoolBilling], dollars_per_credit: float) -> str:
    """One line per pool and a total: what is billing now, so nobody leaves a GPU pool running by accident."""
    if not pools:
        return "No compute pools found."
    lines = ["", f"{'compute pool':<32} {'state':<10} {'family':<12} {'nodes':>5} {'credits/h':>10}"]
    for pool in pools:
        rate = "?" if pool.credits_per_hour is None else f"{pool.credits_per_hour:.2f}"
        lines.append(f"{pool.pool:<32} {pool.state:<10} {pool.instance_family:<12} {pool.billed_nodes:>5} {rate:>10}")
    known = [pool.credits_per_hour for pool in pools if pool.credits_per_hour is not None]
    total = sum(known)
    lines.append(f"Billing now: {total:.2f} credits/h (about ${total * dollars_per_credit:.2f}/h at "
                 f"${dollars_per_credit:g}/credit)" + ("" if len(known) == len(pools) else
                                                       "; '?' = family not in resource/instance_families.json"))
    if total:
        lines.append("Suspend with `ALTER COMPUTE POOL <pool> SUSPEND` or stop everything with `spcs-llm teardown`.")
    return "\n".join(lines)


def _teardown(args: argparse.Namespace) -> int:
    from .sql import teardown_sql

    text = teardown_sql(_names(args), keep_models=args.keep_models)
    if not args.execute:
        _write(text, args.output)
        return 0
    session = _session(args)
    for statement in _statements(text):
        print(f"> {statement}", file=sys.stderr)
        session.sql(statement).collect()
    return 0


def _statements(script: str) -> list[str]:
    """Split a rendered script into statements (our templates keep ';' only at line ends)."""
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in body.split(";") if part.strip()]


def register(subparsers: Any) -> None:
    setup = subparsers.add_parser("setup-sql", help="print the Snowflake setup SQL (roles, pools, OAuth, grants)")
    _add_name_options(setup)
    setup.add_argument("--no-external-access", action="store_true", help="leave out the egress network rule and integration")
    setup.add_argument("--auto-suspend-secs", type=int, default=600, help="compute pool auto-suspend (default 600)")
    setup.add_argument(
        "--functions", nargs="*", metavar="MODEL",
        help="also create SQL service functions for these models (none listed: all catalog models)",
    )
    setup.add_argument("-o", "--output", help="write to this file instead of stdout")
    setup.set_defaults(handler=_guarded(_setup_sql))

    deploy = subparsers.add_parser("deploy", help="log a model and serve it (idempotent); prints the Dataiku settings")
    deploy.add_argument("model", help=f"catalog key ({', '.join(CATALOG)}) or a Hugging Face id")
    deploy.add_argument("--kind", choices=("chat", "embedding"), help="for a Hugging Face id outside the catalog")
    deploy.add_argument("--family", help="chat family (auto, llama2, zephyr, mistral, phi2, falcon, chatml, raw)")
    deploy.add_argument("--attach-chat-template", action="store_true", help="attach the family's template (models without one)")
    deploy.add_argument("--gated", action="store_true", help="the Hub repo is gated: read the token from the SECRET")
    deploy.add_argument("--instance-family", help="instance family of the pool (cost reporting)")
    deploy.add_argument("--gpus", type=int, help="GPUs per instance (0 = CPU)")
    deploy.add_argument("--min-instances", type=int, help="0 lets the service suspend when idle")
    deploy.add_argument("--max-instances", type=int)
    deploy.add_argument("--workers", type=int, help="server workers per instance")
    deploy.add_argument("--batch-rows", type=int, help="max rows per inference batch (>= 32)")
    deploy.add_argument("--vllm", action="store_true", help="serve with the vLLM engine")
    deploy.add_argument("--vllm-arg", action="append", help="extra vLLM argument, e.g. --vllm-arg=--max-model-len=4096")
    deploy.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    deploy.add_argument("--model-name", help="registry model name")
    deploy.add_argument("--service-name", help="service name")
    deploy.add_argument("--version", default="V1", help="registry version name (default V1)")
    deploy.add_argument("--replace", action="store_true", help="drop and recreate the service")
    deploy.add_argument("--replace-version", action="store_true", help="drop and re-log the version (and its service)")
    deploy.add_argument("--caller-role", help="role granted the service role (default: --user-role)")
    deploy.add_argument("--no-external-access", action="store_true", help="build the image without the egress integration")
    deploy.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for RUNNING (default 3600)")
    deploy.add_argument("--poll-interval", type=float, default=15.0, help="seconds between status checks")
    deploy.add_argument("--dollars-per-credit", type=float, default=3.0)
    _add_name_options(deploy)
    _add_session_options(deploy)
    deploy.set_defaults(handler=_guarded(_deploy))

    status = subparsers.add_parser("status", help="list the services in the registry schema and what the pools bill now")
    status.add_argument("--json", action="store_true")
    status.add_argument("--dollars-per-credit", type=float, default=3.0)
    _add_name_options(status)
    _add_session_options(status)
    status.set_defaults(handler=_guarded(_status))

    teardown = subparsers.add_parser("teardown", help="print (or run) the SQL that stops all billing")
    teardown.add_argument("--keep-models", action="store_true", help="keep the database with the registered models")
    teardown.add_argument("--execute", action="store_true", help="run it through a Snowflake session (needs ACCOUNTADMIN)")
    teardown.add_argument("-o", "--output", help="write to this file instead of stdout")
    _add_name_options(teardown)
    _add_session_options(teardown)
    teardown.set_defaults(handler=_guarded(_teardown))
