"""Fixtures for the deployment tests: a scripted fake account behind a recording Snowpark session.

Besides SQL (answered by ``fake_snowflake.RecordingSession``), three seams are patched, each as narrowly as
possible:

* ``FileOperation.put`` — a PUT is a client-side file transfer, not a ``session.sql`` statement; the fake records
  the content of each uploaded file so tests can read the model manifest that was sent.
* ``huggingface_hub.snapshot_download`` — tests are offline; it returns a tiny local "snapshot" folder.
* ``time`` inside snowflake-ml's ``service_ops`` module only — its background log streamer sleeps 5 s before
  fetching final logs; a no-op sleep keeps the suite fast without changing what it does.
"""

from __future__ import annotations

import json
import threading
import time
import types
from pathlib import Path

import pytest

from fake_snowflake import FakeAccount, RecordingSession


@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount()


@pytest.fixture
def session(account: FakeAccount) -> RecordingSession:
    return RecordingSession(account)


@pytest.fixture
def hub_snapshot(tmp_path: Path) -> Path:
    """A Hub snapshot without a chat template, like microsoft/phi-2's."""
    folder = tmp_path / "snapshot"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "phi"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>", "model_max_length": 2048}))
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    return folder


@pytest.fixture(autouse=True)
def _snowflake_seams(monkeypatch: pytest.MonkeyPatch, account: FakeAccount, hub_snapshot: Path):
    import huggingface_hub
    from snowflake.ml._internal import platform_capabilities
    from snowflake.ml.model._client.ops import service_ops
    from snowflake.snowpark import FileOperation

    platform_capabilities.PlatformCapabilities._instance = None

    def record_put(self, local_file_name: str, stage_location: str, **_: object) -> list:
        account.uploaded[f"{stage_location.rstrip('/')}/{Path(local_file_name).name}"] = Path(local_file_name).read_bytes()
        return []

    monkeypatch.setattr(FileOperation, "put", record_put)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **_: str(hub_snapshot))
    monkeypatch.setattr(service_ops, "time", types.SimpleNamespace(sleep=lambda _s: None, time=time.time))
    yield
    for thread in threading.enumerate():
        if thread.name == "service-log-streamer":
            thread.join(timeout=10)
    platform_capabilities.PlatformCapabilities._instance = None
