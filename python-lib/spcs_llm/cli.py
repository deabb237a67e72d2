"""``spcs-llm`` command line: each area registers its own sub-commands here.

Every error ends the command with one line on stderr — what happened and the fix — and exit status 1; the
traceback is shown only with ``--debug``. Service logs attached to a deployment failure follow that line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .errors import SpcsLlmError
from .redaction import redact

LIBRARY_LOGGERS = ("snowflake", "urllib3", "filelock", "huggingface_hub")


def build_parser() -> argparse.ArgumentParser:
    from .deploy.adapter_commands import register as register_adapters
    from .deploy.batch_commands import register as register_batch
    from .deploy.commands import register as register_deploy
    from .deploy.cortex_finetune_commands import register as register_cortex_finetune
    from .deploy.finetune_commands import register as register_finetune
    from .doctor import register as register_doctor
    from .local.commands import register as register_local

    parser = argparse.ArgumentParser(prog="spcs-llm", description="Snowpark Container Services LLMs for Dataiku.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG (secrets are redacted)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    register_doctor(commands)
    register_local(commands)
    register_deploy(commands)
    register_finetune(commands)
    register_adapters(commands)
    register_batch(commands)
    register_cortex_finetune(commands)
    return parser


def error_line(exc: BaseException) -> str:
    """One line: a typed error's message and fix; anything else its type, first line and how to see more."""
    if isinstance(exc, SpcsLlmError):
        text = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        text = f"{type(exc).__name__}: {first} Fix: run again with --debug to see where it failed."
    return "error: " + " ".join(redact(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # the libraries' INFO chatter (Snowpark's AST notice, HTTP pools) only with -v
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become an exit status
        if args.debug:
            raise
        print(error_line(exc), file=sys.stderr)
        logs = getattr(exc, "logs", "")
        if logs:
            print("---- service logs ----", file=sys.stderr)
            print(redact(str(logs)), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
