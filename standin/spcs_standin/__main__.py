"""``python -m spcs_standin``: run the stand-in in the foreground; stdout carries only the one JSON ready line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from spcs_llm.core.errors import SpcsLlmError
from spcs_standin.quiet import quiet_libraries
from spcs_standin.server import serve
from spcs_standin.settings import add_arguments, settings_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spcs_standin", description="Local Snowflake + SPCS stand-in.")
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at DEBUG and let libraries print their warnings and progress bars")
    args = parser.parse_args(argv)
    quiet_libraries(args.verbose)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ready_out = sys.stdout
    sys.stdout = sys.stderr  # whatever a library prints must not get between the client and the ready line

    def announce(line: str) -> None:
        print(line, file=ready_out, flush=True)

    try:
        asyncio.run(serve(settings_from_args(args), announce))
    except SpcsLlmError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
