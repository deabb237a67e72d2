"""What each deployment sub-command does once its arguments are parsed (``commands.py`` declares them).

Order inside every handler: validate all arguments, then (only then) open a Snowflake session. Questions are
asked only on a terminal; without one a missing answer is a typed error that names the flag to pass.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.families import check_instance_family
from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import CATALOG, resolve_model
from spcs_llm.deploy.services.engine import EngineName, EngineOptions
from spcs_llm.deploy.services.pools import billing_report

Ask = Callable[[str], str]
NAME_SETTINGS = (
    "deployer_role", "user_role", "warehouse", "database", "schema", "gpu_pool", "gpu_instance_family", "cpu_pool",
    "cpu_instance_family", "image_repo", "network_rule", "external_access_integration", "oauth_integration",
    "hf_secret", "dss_url",
)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm_billed(question: str, what: str, ask: Ask | None, *, alternative: str = "") -> None:
    """Ask before starting billed compute; off a terminal, refuse (``--yes`` confirms up front)."""
    if not interactive():
        raise ConfigurationError(f"{what} runs billed compute and there is no terminal to confirm it on.",
                                 fix="Add --yes to confirm" + (f", or {alternative}" if alternative else "") + ".")
    answer = (ask or input)(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise ConfigurationError(f"{what} not confirmed; nothing was run.", fix="Answer y, or pass --yes.")


def names_from(args: argparse.Namespace) -> DeploymentNames:
    return DeploymentNames.build(**{name: getattr(args, name, None) for name in NAME_SETTINGS})


def session_for(args: argparse.Namespace) -> Any:
    from spcs_llm.deploy.session import open_session

    return open_session(connection_name=args.connection, dss_connection=args.dss_connection)


def write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"Wrote {output}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def _dss_url(args: argparse.Namespace, ask: Ask | None) -> str:
    """--dss-url, or asked for on a terminal; never a placeholder."""
    if args.dss_url:
        return str(args.dss_url)
    if not interactive():
        raise ConfigurationError(
            "setup-sql needs the DSS URL for the OAuth redirect of the security integration.",
            fix="Pass --dss-url with your DSS base URL as users open it, e.g. --dss-url https://dss.mycompany.com.",
        )
    answer = (ask or input)("DSS base URL for the OAuth redirect (e.g. https://dss.mycompany.com): ").strip()
    if not answer:
        raise ConfigurationError("No DSS URL given.", fix="Re-run and type it, or pass --dss-url.")
    return answer


def setup_sql_command(args: argparse.Namespace, ask: Ask | None = None) -> int:
    from spcs_llm.deploy.services.sql import service_functions_sql, setup_sql

    for option, value, gpu in (("--gpu-instance-family", args.gpu_instance_family, True),
                               ("--cpu-instance-family", args.cpu_instance_family, False)):
        if value:
            check_instance_family(value, gpu=gpu, option=option, credits_per_hour=0.0 if args.allow_unlisted_family
                                  else None)
    args.dss_url = _dss_url(args, ask)
    names = names_from(args)
    text = setup_sql(names, external_access=not args.no_external_access, auto_suspend_secs=args.auto_suspend_secs)
    if args.functions is not None:  # bare --functions: every catalog model
        text += "\n" + service_functions_sql(names, [resolve_model(key) for key in args.functions or CATALOG])
    write(text, args.output)
    return 0


def check_positive(args: argparse.Namespace, *flags: str) -> None:
    """Numbers that must be above 0 (seconds, prices), checked before any connection."""
    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None and not value > 0:
            raise ConfigurationError(f"{flag} must be above 0, not {value}.", fix=f"Pass {flag} above 0.")


def check_non_negative(args: argparse.Namespace, *flags: str) -> None:
    """Numbers that may be 0 but not negative (e.g. --poll-interval 0: look again at once)."""
    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None and value < 0:
            raise ConfigurationError(f"{flag} cannot be negative, not {value}.", fix=f"Pass {flag} 0 or more.")


def engine_options_from(args: argparse.Namespace, engine: EngineName | None = None) -> EngineOptions:
    """The engine flags as given; the default engine and every check come with ``resolve_model``."""
    return EngineOptions(
        engine=engine or getattr(args, "engine", None),
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        tensor_parallel_size=args.tensor_parallel_size,
        extra_args=tuple(args.engine_arg or ()),
    )


def deploy_command(args: argparse.Namespace) -> int:
    from spcs_llm.deploy.services.connection import connection_block
    from spcs_llm.deploy.services.deployer import Deployer, DeployOptions
    from spcs_llm.deploy.services.lifecycle import WaitSettings

    spec = resolve_model(
        args.model,
        kind=args.kind,
        family=args.family,
        attach_chat_template=True if args.attach_chat_template else None,
        gated=args.gated,
        instance_family=args.instance_family,
        gpu_count=args.gpus,
        min_instances=args.min_instances,
        max_instances=args.max_instances,
        num_workers=args.workers,
        max_batch_rows=args.batch_rows,
        engine=engine_options_from(args),
        revision=args.revision,
        model_name=args.model_name,
        service_name=args.service_name,
        params_billion=args.params_billion,
        credits_per_hour=args.credits_per_hour,
    )
    options = DeployOptions(
        version_name=args.version.upper(),
        replace_version=args.replace_version,
        replace_service=args.replace or args.replace_version,
        caller_role=args.caller_role,
        external_access=not args.no_external_access,
        wait=WaitSettings(timeout_s=args.timeout, poll_interval_s=args.poll_interval),
    )
    check_positive(args, "--timeout", "--dollars-per-credit")
    check_non_negative(args, "--poll-interval")
    names = names_from(args)
    if args.dry_run:
        from spcs_llm.deploy.preview import deploy_preview

        print(deploy_preview(spec, names, options, dollars_per_credit=args.dollars_per_credit,
                             command=f"deploy {spec.key}"))
        return 0
    deployed = Deployer(session_for(args), names).deploy(spec, options)
    if deployed.service_reused and spec.kind == "chat":
        # inferred: list_services / SHOW SERVICES do not say which engine a service was created with.
        print(f"Note: kept the running service {deployed.service_fqn}; it serves with the engine it was created "
              f"with. If that was not {spec.engine.engine}, re-run with --replace.", file=sys.stderr)
    print(connection_block(deployed, dollars_per_credit=args.dollars_per_credit))
    return 0


def parse_family_rates(items: list[str] | None) -> dict[str, float]:
    """``--family-rate GPU_NEW=1.5`` (repeatable) → {"GPU_NEW": 1.5}."""
    rates: dict[str, float] = {}
    for item in items or ():
        family, _, value = item.partition("=")
        try:
            rates[family.strip().upper()] = float(value)
        except ValueError:
            raise ConfigurationError(f"--family-rate {item!r} is not FAMILY=CREDITS_PER_HOUR.",
                                     fix="Write it like --family-rate GPU_NV_S=0.57.") from None
    return rates


def status_command(args: argparse.Namespace) -> int:
    from spcs_llm.deploy.services.deployer import Deployer

    rates = parse_family_rates(args.family_rate)
    if args.history_days < 0:
        raise ConfigurationError("--history-days cannot be negative.", fix="Pass 0 (off) or a number of days, e.g. 7.")
    deployer = Deployer(session_for(args), names_from(args))
    services = deployer.status()
    pools = deployer.pools(services, rates)
    if args.json:
        print(json.dumps({"services": services, "pools": [pool.as_dict() for pool in pools]}, indent=2))
        return 0
    print("\n".join(f"{row['service']:<48} {row['status']:<12} {row['ingress_host'] or '-'}" for row in services)
          or "No services.")
    print(billing_report(pools, args.dollars_per_credit))
    if args.history_days:
        from spcs_llm.deploy.services.usage import pool_usage, usage_report

        usage = pool_usage(deployer.session, [pool.pool for pool in pools], args.history_days)
        print(usage_report(usage, args.history_days, args.dollars_per_credit))
    return 0


def _confirm_teardown(args: argparse.Namespace, names: DeploymentNames, ask: Ask | None) -> None:
    if args.yes:
        return
    dropped = "the compute pools and the warehouse" if args.keep_models else \
        f"the compute pools, the warehouse, database {names.database} (registered models), the integrations and roles"
    if not interactive():
        raise ConfigurationError(
            f"teardown --execute drops {dropped}, and there is no terminal to confirm it on.",
            fix="Add --yes to confirm, or run without --execute to print the SQL for review.",
        )
    answer = (ask or input)(f"This drops {dropped}. Type the database name ({names.database}) to go on: ").strip()
    if answer.upper() != names.database:
        raise ConfigurationError("Teardown not confirmed; nothing was dropped.",
                                 fix=f"Type {names.database} exactly, or pass --yes.")


def teardown_command(args: argparse.Namespace, ask: Ask | None = None) -> int:
    from spcs_llm.deploy.services.sql import TeardownIncompleteError, run_teardown, teardown_sql

    names = names_from(args)
    if getattr(args, "dry_run", False) and args.execute:
        raise ConfigurationError("--dry-run and --execute contradict each other.",
                                 fix="Pass --dry-run (or nothing) to print the SQL, or --execute to run it.")
    if not args.execute:  # printing the SQL needs no session
        write(teardown_sql(names, keep_models=args.keep_models), args.output)
        return 0
    _confirm_teardown(args, names, ask)
    try:
        ran = run_teardown(session_for(args), names, keep_models=args.keep_models, confirmation=names.database)
    except TeardownIncompleteError as stopped:
        _show_ran(stopped.ran)  # then the error line: what failed and what did not run
        raise
    _show_ran(ran)
    return 0


def _show_ran(statements: list[str]) -> None:
    for statement in statements:
        print(f"> {statement}", file=sys.stderr)
