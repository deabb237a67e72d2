"""Images on the stand-in's Cortex chat completions endpoint: Snowflake's rules, then a deterministic "vision".

The rules are enforced as Snowflake states them, the strictest reading where its docs are silent (each refusal is a
400 naming the message and part):

- Images only for models that take them: AI_COMPLETE's image models
  (https://docs.snowflake.com/en/sql-reference/functions/ai_complete-prompt-object); here ``claude-tiny``, as the
  Claude family does. Inferred: the REST endpoint refuses an image for another model rather than dropping it.
- Base64 data only: the inference:complete spec's ``ImageDetails.type`` enum is ``base64`` alone
  (snowflakedb/snowflake-rest-api-specs, ``specifications/cortex-inference.yaml``); on the OpenAI-compatible
  endpoint that is a ``data:<type>;base64,`` URL (inferred: a remote URL is refused, not fetched).
- Types: jpeg, png, gif, webp (the COMPLETE multimodal "Usage notes",
  https://docs.snowflake.com/en/sql-reference/functions/complete-snowflake-cortex-multimodal; heic/heif of the
  spec left out, the strict reading), and the bytes must be of the declared type (inferred).
- Size: at most 3.75 MB decoded and 8000 × 8000 pixels (the same page: claude-3-5-sonnet's limits, the smallest
  it gives).
- Several images in one request only for Claude and Llama models ("Currently, only Anthropic (claude) and Meta
  (llama) models can reference multiple images in a single prompt",
  https://docs.snowflake.com/en/user-guide/snowflake-cortex/ai-images).
- Images in user messages only (OpenAI's Chat Completions reference types other roles' content as text).

The tiny model cannot see, so the stand-in describes each image deterministically (type, width × height, the
first 12 hex digits of the decoded bytes' SHA-256): the description replaces the image in the prompt and opens
the reply, so a test can check that the image arrived intact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

IMAGE_TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n", "image/gif": b"GIF8",
               "image/webp": b"RIFF"}
MAX_IMAGE_BYTES = 3_750_000
MAX_IMAGE_SIDE = 8000
MULTI_IMAGE_PREFIXES = ("claude-", "llama")
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>[A-Za-z0-9+/=\s]*)$")


class ImageRefusedError(ValueError):
    """A 400: the message names the message and part."""


@dataclass(frozen=True)
class SeenImage:
    mime: str
    size: int
    width: int | None
    height: int | None
    sha256: str

    def description(self) -> str:
        dims = f"{self.width}x{self.height}" if self.width else "unknown size"
        return f"[image: {self.mime}, {dims}, {self.size} bytes, sha256 {self.sha256[:12]}]"


def _dimensions(mime: str, data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the file header (PNG IHDR, GIF screen, JPEG SOF, WebP VP8X); None when not found."""
    try:
        if mime == "image/png":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if mime == "image/gif":
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if mime == "image/webp" and data[12:16] == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if mime == "image/jpeg":
            at = 2
            while at + 9 < len(data) and data[at] == 0xFF:
                marker, length = data[at + 1], struct.unpack(">H", data[at + 2:at + 4])[0]
                if marker in (0xC0, 0xC1, 0xC2):
                    height, width = struct.unpack(">HH", data[at + 5:at + 9])
                    return width, height
                at += 2 + length
    except struct.error:
        pass
    return None, None


def _image(part: dict[str, Any], where: str) -> SeenImage:
    url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
    match = _DATA_URL.match(url) if isinstance(url, str) else None
    if match is None:
        raise ImageRefusedError(f"{where}: image_url must be a data:<type>;base64,<data> URL; remote URLs are not "
                           "fetched.")
    mime = match.group("mime").lower()
    if mime not in IMAGE_TYPES:
        raise ImageRefusedError(f"{where}: unsupported image type {mime!r}; use one of {', '.join(IMAGE_TYPES)}.")
    try:
        data = base64.b64decode("".join(match.group("data").split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefusedError(f"{where}: the image is not valid base64.") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefusedError(f"{where}: the image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}.")
    if not data.startswith(IMAGE_TYPES[mime]) or (mime == "image/webp" and data[8:12] != b"WEBP"):
        raise ImageRefusedError(f"{where}: the image's bytes are not {mime}.")
    width, height = _dimensions(mime, data)
    if max(width or 0, height or 0) > MAX_IMAGE_SIDE:
        raise ImageRefusedError(f"{where}: the image is {width}x{height} pixels; the limit is {MAX_IMAGE_SIDE} a side.")
    return SeenImage(mime, len(data), width, height, hashlib.sha256(data).hexdigest())


def see_images(messages: list[dict[str, Any]], model: str, accepts_images: bool) -> tuple[list[dict], list[SeenImage]]:
    """The messages with each image part replaced by its description (a text part), and the images seen."""
    seen: list[SeenImage] = []
    out = []
    for position, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            out.append(message)
            continue
        parts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "image_url":
                parts.append(part)
                continue
            where = f"messages[{position}].content[{index}]"
            if not accepts_images:
                raise ImageRefusedError(f"{where}: model {model} does not accept images.")
            if message.get("role") != "user":
                raise ImageRefusedError(f"{where}: images are accepted in user messages only.")
            image = _image(part, where)
            seen.append(image)
            parts.append({"type": "text", "text": image.description()})
        out.append({**message, "content": parts})
    if len(seen) > 1 and not model.startswith(MULTI_IMAGE_PREFIXES):
        raise ImageRefusedError(f"model {model} takes one image per request; this one holds {len(seen)}.")
    return out, seen


def tiny_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A real PNG of one colour, made in code (no file, no imaging library), for the demo and tests."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
