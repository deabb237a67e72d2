"""Test-wide setup: import the plugin library from the checkout, fully offline."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python-lib"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Token caches, endpoint registries and learned endpoint facts are process-wide: reset them per test."""
    yield
    from spcs_llm import auth, chat, embeddings, transport

    auth.clear_token_cache()
    transport.reset_endpoint_registry()
    chat.forget_detected_protocols()
    embeddings.forget_dimensions()
