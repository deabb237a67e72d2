"""``spcs-llm`` command line: each area registers its own sub-commands here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from .deploy.commands import register as register_deploy
    from .doctor import register as register_doctor
    from .local.commands import register as register_local

    parser = argparse.ArgumentParser(prog="spcs-llm", description="Snowpark Container Services LLMs for Dataiku.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG (secrets are redacted)")
    commands = parser.add_subparsers(dest="command", required=True)
    register_doctor(commands)
    register_local(commands)
    register_deploy(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
