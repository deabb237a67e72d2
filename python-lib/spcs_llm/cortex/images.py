"""DSS image parts → Cortex image content, checked before anything is sent (bad images cost nothing).

DSS sends images as message ``parts``: ``{"type": "IMAGE_INLINE", "inlineImage": <base64>, "imageMimeType"?}`` or
``{"type": "IMAGE_URI", "imageUrl"}`` (dataiku-api-client ``dataikuapi/dss/llm.py``). The chat completions endpoint
is "a superset of the OpenAI Chat Completions API" (https://docs.snowflake.com/en/user-guide/snowflake-cortex/
open_ai_sdk), so an image goes as an OpenAI ``image_url`` part whose URL is a base64 ``data:`` URL.

The rules, each with its source:

- Which models take images: the dated list below. Documented for AI_COMPLETE with images
  (https://docs.snowflake.com/en/sql-reference/functions/ai_complete-prompt-object, "For image input";
  claude-3-5-sonnet and pixtral-large from https://docs.snowflake.com/en/sql-reference/functions/
  complete-snowflake-cortex-multimodal). Inferred: the REST chat completions endpoint accepts images for the same
  models. The model's 'Model accepts images' setting overrides the list.
- Types: .jpg/.jpeg, .png, .gif, .webp (COMPLETE multimodal "Usage notes"; the inference:complete spec,
  snowflakedb/snowflake-rest-api-specs ``cortex-inference.yaml`` ``ImageDetails.content_type``, also names
  heic/heif, which OpenAI-form image parts do not take: the strict reading keeps the four common to both). The
  decoded bytes must be of the type declared (inferred: the strict reading of "Type of image").
- Size: at most 3.75 MB decoded, the smallest per-model limit the COMPLETE multimodal page gives (claude-3-5-sonnet
  3.75 MB, pixtral-large 10 MB), and at most 8000 × 8000 pixels (claude-3-5-sonnet's limit, same page); inferred:
  both apply to every model and to the REST API.
- Several images in one request only for Claude and Llama models: "Currently, only Anthropic (claude) and Meta
  (llama) models can reference multiple images in a single prompt"
  (https://docs.snowflake.com/en/user-guide/snowflake-cortex/ai-images); inferred: the same holds on the REST API.
- Only ``data:`` URLs: inferred (peers convert image URLs to base64 data URLs before calling Cortex, LiteLLM PR
  #39453); an http(s) URL is refused rather than fetched, since the connector must not fetch arbitrary URLs from
  inside DSS.
- Images only in user turns: OpenAI's Chat Completions reference types system and assistant content as text.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.dss.messages import IMAGE_PART_TYPES

ImageSetting = Literal["auto", "yes", "no"]
IMAGE_SETTING_CHOICES: tuple[ImageSetting, ...] = get_args(ImageSetting)

IMAGE_MODELS_AS_OF = "2026-12-07"
IMAGE_MODELS = frozenset({
    "claude-3-5-sonnet", "claude-3-7-sonnet", "claude-4-sonnet", "claude-4-opus", "claude-haiku-4-5",
    "claude-sonnet-4-5", "claude-opus-4-5", "claude-sonnet-4-6", "claude-opus-4-6", "llama4-maverick",
    "llama4-scout", "pixtral-large", "openai-o4-mini", "openai-gpt-4.1", "openai-gpt-5", "openai-gpt-5-chat",
    "openai-gpt-5-mini", "openai-gpt-5-nano", "openai-gpt-5.1", "openai-gpt-5.2", "gemini-2.5-flash",
    "gemini-2.5-flash-lite", "gemini-3-pro",
})
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_ALIASES = {"image/jpg": "image/jpeg"}
MAX_IMAGE_BYTES = 3_750_000
MAX_IMAGE_SIDE = 8000
MULTI_IMAGE_PREFIXES = ("claude-", "llama")
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)$", re.S)


def model_accepts_images(model: str, setting: str = "auto") -> bool:
    if setting != "auto":
        return setting == "yes"
    return model.lower() in IMAGE_MODELS


def sniff_image_type(data: bytes) -> str | None:
    """The image type the bytes' signature shows, or None (the four types Cortex takes only)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_dimensions(mime: str, data: bytes) -> tuple[int, int] | None:
    """Width and height from the header (PNG IHDR, GIF screen, JPEG SOF, WebP VP8X), or None when not found."""
    try:
        if mime == "image/png":
            return struct.unpack(">II", data[16:24])
        if mime == "image/gif":
            return struct.unpack("<HH", data[6:10])
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
    return None


def _shown_url(url: Any) -> str:
    """An image URL as an error may show it: no data, query, fragment or credentials."""
    if not isinstance(url, str):
        return repr(url)
    if url.strip().lower().startswith("data:"):
        return url.strip().split(",", 1)[0] + ",…"
    scheme, _, rest = url.strip().partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…" if rest else url[:40]


@dataclass(frozen=True)
class CheckedImage:
    mime: str
    size: int
    base64: str

    def openai_part(self) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": f"data:{self.mime};base64,{self.base64}"}}


def _refuse(where: str, what: str, fix: str) -> RequestRejectedError:
    return RequestRejectedError(f"{where}: {what}", fix=fix)


def _inline_source(part: Mapping[str, Any], where: str) -> tuple[str | None, str]:
    """(declared type, base64 text) of a DSS image part; an http(s) or other URL is refused."""
    if part.get("type") == "IMAGE_INLINE":
        data = part.get("inlineImage")
        if not isinstance(data, str) or not data.strip():
            raise _refuse(where, "the inline image is empty.", "Send the image's bytes as base64 in 'inlineImage'.")
        return part.get("imageMimeType"), data
    url = part.get("imageUrl")
    match = _DATA_URL.match(url.strip()) if isinstance(url, str) else None
    if match is None:
        raise _refuse(where, f"the image URL {_shown_url(url)!r} is not a base64 data: URL. The Cortex connector "
                             "does not download images from URLs (it must not fetch arbitrary addresses from inside "
                             "DSS).",
                      "Download the image yourself and send it inline (IMAGE_INLINE with base64 bytes), or as a "
                      "data:image/png;base64,… URL.")
    return match.group("mime"), match.group("data")


def check_image(part: Mapping[str, Any], where: str) -> CheckedImage:
    """A DSS image part, decoded and checked: valid base64, a known type matching its bytes, within the size."""
    declared, text = _inline_source(part, where)
    compact = "".join(text.split())
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(where, "the image is not valid base64.",
                      "Encode the image's bytes with standard base64 (e.g. base64.b64encode(data).decode()).") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _refuse(where, f"the image is {len(data):,} bytes, over Cortex's {MAX_IMAGE_BYTES:,}-byte limit.",
                      "Resize or recompress the image (e.g. a JPEG under 3.75 MB).")
    found = sniff_image_type(data)
    if found is None:
        raise _refuse(where, "the image is not a JPEG, PNG, GIF or WebP file.",
                      "Convert the image to PNG or JPEG before sending it.")
    mime = _ALIASES.get((declared or "").lower(), (declared or "").lower()) or found
    if mime not in IMAGE_TYPES:
        raise _refuse(where, f"the image type {declared!r} is not one Cortex takes ({', '.join(IMAGE_TYPES)}).",
                      "Convert the image to PNG or JPEG before sending it.")
    if mime != found:
        raise _refuse(where, f"the image is declared {mime} but its bytes are {found}.",
                      f"Set imageMimeType to {found} (or leave it out).")
    size = image_dimensions(mime, data)
    if size is not None and max(size) > MAX_IMAGE_SIDE:
        raise _refuse(where, f"the image is {size[0]}x{size[1]} pixels, over Cortex's {MAX_IMAGE_SIDE}x"
                             f"{MAX_IMAGE_SIDE}.", f"Scale the image down to at most {MAX_IMAGE_SIDE} pixels a side.")
    return CheckedImage(mime=mime, size=len(data), base64=base64.b64encode(data).decode("ascii"))


def openai_content(parts: list[Mapping[str, Any]], where: str) -> list[dict[str, Any]]:
    """DSS parts → OpenAI content parts in the same order: text as text, images as base64 data URLs."""
    content: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        kind = part.get("type")
        if kind == "TEXT":
            content.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind in IMAGE_PART_TYPES:
            content.append(check_image(part, f"{where}, part {index}").openai_part())
        else:
            raise _refuse(f"{where}, part {index}", f"the part type {kind!r} is not one the Cortex connector sends.",
                          "Send TEXT, IMAGE_INLINE or IMAGE_URI (data: URL) parts.")
    return content


def check_image_count(model: str, images: int) -> None:
    """Several images in one request only for the model families Snowflake documents it for (module notes)."""
    if images > 1 and not model.lower().startswith(MULTI_IMAGE_PREFIXES):
        raise RequestRejectedError(
            f"The query holds {images} images; on Cortex only Claude and Llama models take several images at once.",
            fix="Send one image per query, or use a Claude or Llama 4 model.")
