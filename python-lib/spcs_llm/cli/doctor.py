"""``spcs-llm doctor``: the command line of the SPCS checks in ``spcs_llm.spcs.doctor`` — its options, the
credentials read from environment variables or files (never from the command line), and the printed report.

It runs in the plugin's code env (``code-env/python/spec/requirements.txt``): nothing here needs snowflake-ml.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import register_secret
from spcs_llm.spcs.config import FAMILIES
from spcs_llm.spcs.doctor import DoctorInputs, Report, format_report, run_doctor


def auth_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The auth part of a DSS config from the command line; secrets are read from the environment or a file."""
    environ = dict(os.environ if environ is None else environ)

    def secret(env_name: str, *, required: bool = True) -> str | None:
        value = environ.get(env_name) or None
        if value is None and required:
            raise ConfigurationError(f"The environment variable {env_name} is empty or not set.",
                                     fix=f"export {env_name}=<the token>, or name another variable with --token-env.")
        register_secret(value)
        return value

    common = {"account_url": args.account_url, "account_identifier": args.account_identifier, "role": args.role}
    if args.auth == "oauth":
        return {"auth_type": "oauth", "oauth_preset": {
            "snowflake_oauth": secret(args.token_env), "oauth_mode": args.oauth_mode, **common}}
    preset: dict[str, Any] = {"service_auth": "pat" if args.auth in ("pat", "pat-exchange") else "keypair",
                              "user": args.user, "pat_exchange": args.auth == "pat-exchange", **common}
    if args.auth == "keypair":
        if not args.private_key_file:
            raise ConfigurationError("--auth keypair needs the private key.",
                                     fix="Pass --private-key-file <PEM file> (and --user).")
        try:
            with open(args.private_key_file, encoding="utf-8") as key_file:
                preset["private_key"] = key_file.read()
        except OSError as failure:
            raise ConfigurationError(f"Cannot read the private key file: {failure.strerror}.",
                                     fix="Pass the path of a readable PEM file to --private-key-file.") from None
        register_secret(preset["private_key"])
        preset["private_key_passphrase"] = secret(args.passphrase_env, required=False)
    else:
        preset["pat"] = secret(args.token_env)
    return {"auth_type": "service", "service_preset": preset}


def _handle(args: argparse.Namespace) -> int:
    """Missing credentials are reported as a failed check, like every other failure: the same output, exit 1."""
    try:
        auth = auth_from_args(args)
    except ConfigurationError as failure:
        report = Report()
        report.add("Credentials", False, failure.message, failure.fix)
    else:
        report = run_doctor(DoctorInputs(endpoint=args.endpoint, kind=args.kind, auth=auth, route=args.route,
                                         model_family=args.model_family, timeout=args.timeout,
                                         cold_start_wait=args.cold_start_wait))
    print(format_report(report))
    return 0 if report.ok else 1


def register(subparsers: Any) -> None:
    """Adds ``doctor`` and its options to the ``spcs-llm`` parser (``spcs_llm.cli.COMMANDS``)."""
    parser = subparsers.add_parser("doctor",
                                   help="check DNS, TLS, tokens, ingress auth and protocol of an SPCS endpoint")
    parser.add_argument("--endpoint", required=True, help="ingress host or URL")
    parser.add_argument("--kind", choices=["chat", "embed"], default="chat")
    parser.add_argument("--route", help="method route (default: try the usual ones)")
    parser.add_argument("--model-family", choices=FAMILIES, default="auto",
                        help="chat layout, for services that take a text prompt")
    parser.add_argument("--account-url", help="https://<account>.snowflakecomputing.com (needed to exchange tokens)")
    parser.add_argument("--account-identifier", help="<ORG>-<ACCOUNT> when the account URL does not carry it")
    parser.add_argument("--auth", choices=["oauth", "pat", "pat-exchange", "keypair"], default="pat")
    parser.add_argument("--token-env", default="SNOWFLAKE_TOKEN",
                        help="environment variable holding the OAuth access token or PAT (default SNOWFLAKE_TOKEN)")
    parser.add_argument("--oauth-mode", choices=["auto", "direct", "exchange"], default="auto")
    parser.add_argument("--user", help="the service user (key pair, PAT exchange)")
    parser.add_argument("--role")
    parser.add_argument("--private-key-file", help="PEM private key for --auth keypair")
    parser.add_argument("--passphrase-env", default="SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
                        help="environment variable holding the private key's passphrase, if any")
    parser.add_argument("--timeout", type=float, default=10.0, help="connect timeout in seconds")
    parser.add_argument("--cold-start-wait", type=float, default=120.0, metavar="SECONDS",
                        help="how long to wait for a suspended service to resume (default 120; a GPU service may "
                        "need 900)")
    parser.set_defaults(handler=_handle)
