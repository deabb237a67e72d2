"""``spcs-llm`` command line: each area registers its own sub-commands here. A command's module is imported only
when that command runs (``COMMANDS``), so ``spcs-llm --help`` and each command work in the smallest environment they
need: ``doctor`` in the plugin's code env, the deployment commands in the notebooks' env, ``local`` in the dev env.

Every error ends the command with one line on stderr — what happened and the fix — and exit status 1; the
traceback is shown only with ``--debug``. Service logs attached to a deployment failure follow that line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from spcs_llm.core.errors import ConfigurationError, SpcsLlmError
from spcs_llm.core.redaction import redact

LIBRARY_LOGGERS = ("snowflake", "urllib3", "filelock", "huggingface_hub")

# The requirements files each kind of command needs (README "Environments").
PLUGIN_ENV = "code-env/python/spec/requirements.txt"
DEPLOY_ENV = "notebooks/requirements.txt"
DEV_ENV = "tests/requirements.txt"


class Command(NamedTuple):
    """A sub-command as ``spcs-llm --help`` lists it: the module whose ``register`` adds its arguments, its one-line
    summary (the ``help`` that module gives it), and the requirements file of the environment it runs in."""

    module: str
    summary: str
    requirements: str


COMMANDS: dict[str, Command] = {
    "doctor": Command("spcs_llm.cli.doctor", "check DNS, TLS, tokens, ingress auth and protocol of an SPCS endpoint",
                      PLUGIN_ENV),
    "local": Command("spcs_llm.cli.local", "run the local Snowflake + SPCS stand-in (127.0.0.1 only)", DEV_ENV),
    "setup-sql": Command("spcs_llm.cli.services", "print the Snowflake setup SQL (roles, pools, OAuth, grants)",
                         DEPLOY_ENV),
    "deploy": Command("spcs_llm.cli.services", "log a model and serve it (idempotent); prints the Dataiku settings",
                      DEPLOY_ENV),
    "status": Command("spcs_llm.cli.services", "list the services, what the pools bill now, per day and month",
                      DEPLOY_ENV),
    "teardown": Command("spcs_llm.cli.services", "print (or run) the SQL that stops all billing", DEPLOY_ENV),
    "finetune": Command("spcs_llm.cli.finetune",
                        "train a LoRA adapter on prompt/response pairs as a Snowflake ML job (GPU pool)", DEPLOY_ENV),
    "serve-adapters": Command("spcs_llm.cli.adapters",
                              "serve a chat model with its LoRA adapters on vLLM (idempotent); prints the settings",
                              DEPLOY_ENV),
    "batch": Command("spcs_llm.cli.batch",
                     "run a deployed model over a table into an output table, inside Snowflake", DEPLOY_ENV),
    "cortex-finetune": Command("spcs_llm.cli.cortex_finetune",
                               "fine-tune a Cortex model (Llama / Mistral) from a table and print its DSS settings",
                               DEPLOY_ENV),
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``spcs-llm`` parser with the full arguments of ``commands`` (default: every command), each registered by
    its own module; any other command is listed with its summary only, without importing its module."""
    modules = {COMMANDS[name].module for name in (COMMANDS if commands is None else commands)}
    parser = argparse.ArgumentParser(prog="spcs-llm", description="Snowpark Container Services LLMs for Dataiku.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG (secrets are redacted)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        if name in subparsers.choices:  # registered with an earlier command of the same module
            continue
        if command.module in modules:
            importlib.import_module(command.module).register(subparsers)
        else:  # a stand-in that takes anything: enough to list the command and to tell which one runs
            subparsers.add_parser(name, help=command.summary, add_help=False)
    return parser


def selected_command(argv: Sequence[str]) -> argparse.Namespace:
    """The global options and the command named in ``argv``, read without importing any command's module
    (``spcs-llm --help`` and usage errors end here, as they always did)."""
    args, _ = build_parser(()).parse_known_args(argv)
    return args


def import_failure(name: str, exc: ModuleNotFoundError) -> ConfigurationError:
    requirements = COMMANDS[name].requirements
    if requirements == DEV_ENV:  # the stand-in (standin/ in the repository) is not in the plugin: a checkout has it
        fix = (f"in a clone of the spcs-llm repository run make venv (it installs {DEV_ENV} and puts the stand-in "
               f"on the path), then .venv/bin/spcs-llm {name}.")
    else:
        fix = (f"pip install -r {requirements} (from the spcs-llm plugin's files) into this environment, or run the "
               "command where it is installed.")
    return ConfigurationError(f"spcs-llm {name} needs the Python package '{exc.name}', which this environment lacks.",
                              fix=fix)


def error_line(exc: BaseException) -> str:
    """One line: a typed error's message and fix; anything else its type, first line and how to see more."""
    if isinstance(exc, SpcsLlmError):
        text = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        text = f"{type(exc).__name__}: {first} Fix: run again with --debug to see where it failed."
    return "error: " + " ".join(redact(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = selected_command(argv)
    try:
        parser = build_parser([command.command])
    except ModuleNotFoundError as exc:  # the command's own module needs a package this environment lacks
        if command.debug:
            raise
        print(error_line(import_failure(command.command, exc)), file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # the libraries' INFO chatter (Snowpark's AST notice, HTTP pools) only with -v
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(error_line(exc), file=sys.stderr)
        logs = getattr(exc, "logs", "")
        if logs:
            print("---- service logs ----", file=sys.stderr)
            print(redact(str(logs)), file=sys.stderr)
        return 1

