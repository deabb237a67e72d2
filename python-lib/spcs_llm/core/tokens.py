"""Token counts when the service reports no usage: the model's own tokenizer if we have it, else an estimate.

The tokenizer comes from the 'Tokenizer' setting: a ``tokenizer.json`` file, a folder holding one, or a Hugging
Face model id that is already in the local Hugging Face cache. Nothing is ever downloaded: DSS nodes often
have no route to the Hub, and a silent multi-second download inside a request is worse than an estimate.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from tokenizers import Tokenizer

from spcs_llm.core.redaction import get_logger
from spcs_llm.core.registry import PROCESS, REGISTRY

log = get_logger(__name__)

_TOKENIZER_FILE = "tokenizer.json"
_BYTES_PER_TOKEN = 4.0
_PIECE = re.compile(r"\w+|[^\w\s]")
# Each ASCII character's class under _PIECE's own \w and \s (w: word, s: space, p: a piece of its own), derived from
# the patterns so that the count below cannot drift from them; bytes above 127 never reach it.
_ASCII_CLASSES = bytes(
    ord("w") if re.fullmatch(r"\w", chr(code)) else ord("s") if re.fullmatch(r"\s", chr(code)) else ord("p")
    for code in range(128)
) + b"p" * 128
_HF_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

TOKENIZER = "tokens.tokenizer:"  # + the file's resolved path: a loaded tokenizer, process-wide, in the registry


def estimate_tokens(text: str) -> int:
    """A model-agnostic guess, used only when no tokenizer is available (counts are then flagged as estimates).

    BPE vocabularies average about 4 bytes of English per token, but short words, punctuation and digits each
    cost a token of their own, and non-Latin scripts cost more bytes per character. So the guess is the larger
    of UTF-8 bytes / 4 and the number of word and punctuation pieces, rounded up: never 0 for non-empty text,
    and never smaller for a longer text that starts with a shorter one.
    """
    if not text:
        return 0
    if text.isascii():
        by_bytes, by_pieces = len(text) / _BYTES_PER_TOKEN, _ascii_pieces(text)
    else:
        by_bytes, by_pieces = len(text.encode("utf-8")) / _BYTES_PER_TOKEN, len(_PIECE.findall(text))
    return max(1, math.ceil(max(by_bytes, by_pieces)))


def _ascii_pieces(text: str) -> int:
    """``len(_PIECE.findall(text))`` for ASCII text, in C-level passes (a third of the regex's time on the bench
    corpus, bench/results/fast_embed.md): every punctuation character is a piece, and so is every run of word
    characters, which starts either the text or right after a space or a punctuation character."""
    classes = text.encode("ascii").translate(_ASCII_CLASSES)
    return (classes.count(b"p") + classes.count(b"sw") + classes.count(b"pw")
            + (1 if classes.startswith(b"w") else 0))


def _hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads, read at call time so a changed HF_HOME is honoured."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _cached_hub_file(model_id: str) -> Path | None:
    """The ``tokenizer.json`` of ``model_id`` in the local Hub cache: the ``main`` ref, else the newest snapshot."""
    from huggingface_hub import try_to_load_from_cache  # a dependency of tokenizers; looks, never downloads

    cache_dir = _hub_cache_dir()
    found = try_to_load_from_cache(model_id, _TOKENIZER_FILE, cache_dir=cache_dir)
    if isinstance(found, str):
        return Path(found)
    repo_dir = cache_dir / ("models--" + model_id.replace("/", "--"))
    snapshots = sorted(repo_dir.glob(f"snapshots/*/{_TOKENIZER_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return snapshots[0] if snapshots else None


def resolve_tokenizer_file(setting: str) -> Path | None:
    """The ``tokenizer.json`` a 'Tokenizer' setting points at, or None when there is none locally."""
    path = Path(setting).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidate = path / _TOKENIZER_FILE
        return candidate if candidate.is_file() else None
    if _HF_MODEL_ID.match(setting):
        return _cached_hub_file(setting)
    return None


def _load(file: Path) -> Tokenizer:
    key = str(file.resolve())
    cached = REGISTRY.get(PROCESS, TOKENIZER + key)
    if cached is not None:
        return cached
    tokenizer = Tokenizer.from_file(key)  # loaded outside the registry's lock: it may take a while
    # A shipped tokenizer.json may pad or truncate (MiniLM's pads to 128): a count wants neither.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return REGISTRY.setdefault(PROCESS, TOKENIZER + key, lambda: tokenizer)


class TokenCounter:
    """Counts tokens exactly with a model tokenizer (``exact`` True), or estimates them (``exact`` False)."""

    def __init__(self, tokenizer: Tokenizer | None = None):
        self._tokenizer = tokenizer
        self.exact = tokenizer is not None

    @classmethod
    def for_setting(cls, tokenizer: str | None) -> TokenCounter:
        """A counter for the 'Tokenizer' setting; falls back to the estimator, with a warning, when it is unusable."""
        setting = (tokenizer or "").strip()
        if not setting:
            return cls()
        file = resolve_tokenizer_file(setting)
        if file is None:
            log.warning(
                "Tokenizer %r was not found (no tokenizer.json at that path, nor in the local Hugging Face cache "
                "under %s); token counts will be estimates. Point 'Tokenizer' at a tokenizer.json or a folder "
                "holding one.",
                setting,
                _hub_cache_dir(),
            )
            return cls()
        try:
            return cls(_load(file))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for a malformed file
            log.warning(
                "Tokenizer file %s could not be loaded (%s); token counts will be estimates. Replace it with the "
                "model's own tokenizer.json.",
                file,
                exc,
            )
            return cls()

    def count(self, text: str) -> int:
        """Tokens in ``text``. Exact counts add no special tokens: a rendered prompt already carries its BOS."""
        if self._tokenizer is None:
            return estimate_tokens(text)
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
