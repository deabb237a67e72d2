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
import io
import re
from dataclasses import dataclass
from typing import Any

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
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
    width: int
    height: int
    sha256: str

    def description(self) -> str:
        return f"[image: {self.mime}, {self.width}x{self.height}, {self.size} bytes, sha256 {self.sha256[:12]}]"


def _decoded(mime: str, data: bytes, where: str) -> tuple[int, int]:
    """Width and height of an image Pillow decodes whole as ``mime``: a truncated or mislabelled file is refused, as
    the strict reading of "the bytes must be of the declared type" (the connector only reads headers; the stand-in
    uses an imaging library of its own so that the two never share a parser)."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # the side limit below is the rule; Pillow's bomb warning is not
    try:
        with Image.open(io.BytesIO(data)) as image:
            if Image.MIME.get(image.format or "") != mime:
                raise ImageRefusedError(f"{where}: the image's bytes are not {mime}.")
            width, height = image.size
            if max(width, height) > MAX_IMAGE_SIDE:
                raise ImageRefusedError(
                    f"{where}: the image is {width}x{height} pixels; the limit is {MAX_IMAGE_SIDE} a side.")
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as bad:
        if isinstance(bad, ImageRefusedError):
            raise
        raise ImageRefusedError(f"{where}: the image's bytes are not a readable {mime}.") from None
    return width, height


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
    width, height = _decoded(mime, data, where)
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
    """A real PNG of one colour, made in code (no file), for the demo and tests."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), rgb).save(buffer, format="PNG")
    return buffer.getvalue()
