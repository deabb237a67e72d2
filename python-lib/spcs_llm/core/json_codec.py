"""Decoding answer bodies: with ``orjson`` when it is installed, as it reads 384-float vectors about 4× faster than
the stdlib (bench/results/fast_embed.md), and with ``json`` otherwise.

The values and the errors are the stdlib's: whatever ``orjson`` refuses (NaN and Infinity literals, which the stdlib
reads as floats for the vector check to refuse row by row; numbers beyond the float range; lone surrogates; BOMs and
UTF-16 bodies; malformed JSON) is decoded again by ``json.loads``, so a malformed body raises the stdlib's
``json.JSONDecodeError`` whichever library is installed. One difference is kept on purpose: an integer of 2**64 or
more reads as the nearest float under ``orjson`` (the exact int under the stdlib). Vector numbers become floats
anyway, and such a row index is out of range either way; finding those integers first would cost more than
``orjson`` saves.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

orjson: ModuleType | None
try:
    import orjson
except ImportError:  # the plugin code env installs it; without it the stdlib does the work, just slower
    orjson = None


def loads(content: bytes | str) -> Any:
    """Parse a JSON document exactly as ``json.loads`` does; raises ValueError when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(content)
        except ValueError:
            pass
    return json.loads(content)
