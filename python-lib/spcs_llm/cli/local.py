"""``spcs-llm local``: start the local stand-in of Snowflake, SPCS and Cortex from a development checkout.

The stand-in (``standin/spcs_standin`` in the repository) is not part of the plugin: ``make venv`` installs its
packages and puts it on the path. Elsewhere (the plugin's code env, the notebooks' env) the command is still listed,
and running it is one line saying what to install.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from spcs_llm.core.errors import ConfigurationError

SUMMARY = "run the local Snowflake + SPCS stand-in (127.0.0.1 only)"
# What the stand-in imports to serve its models: the module each needs, and the package pip installs it from.
STANDIN_PACKAGES = {"spcs_standin": "the stand-in (standin/ in the spcs-llm repository)", "starlette": "starlette",
                    "uvicorn": "uvicorn", "torch": "torch", "transformers": "transformers",
                    "sentence_transformers": "sentence-transformers"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help=SUMMARY)
    if importlib.util.find_spec("spcs_standin") is None:
        parser.add_argument("standin_arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(handler=lambda _args: check_standin_packages())
        return
    from spcs_standin.settings import add_arguments  # light: the stand-in's options, no server stack

    add_arguments(parser)
    parser.set_defaults(handler=run_local)


def run_local(args: argparse.Namespace) -> int:
    check_standin_packages()
    from spcs_standin.commands import run_local as run_standin

    return run_standin(args)


def check_standin_packages() -> None:
    """Stop with one line naming what to install when the stand-in or its packages are missing."""
    missing = [package for module, package in STANDIN_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigurationError(
            f"spcs-llm local runs the stand-in with real small models and needs {', '.join(missing)}, which this "
            "environment lacks.",
            fix="in a clone of the spcs-llm repository run make venv (or pip install -r tests/requirements.txt), "
                "then start it with .venv/bin/spcs-llm local.")
