"""Fixtures for the deployment tests: a scripted fake account behind a recording Snowpark session.

Besides SQL (answered by ``fake_snowflake.RecordingSession``), the seams that are not SQL (file PUT, Hub download,
snowflake-ml's log-streamer sleep) are patched for every test by ``fake_snowflake_seams.snowflake_seams``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clean_envs import DEPLOY_REQUIREMENTS, PLUGIN_REQUIREMENTS, clean_venv
from fake_snowflake import FakeAccount, RecordingSession
from fake_snowflake_seams import snowflake_seams


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


@pytest.fixture(scope="session")
def plugin_env_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv of the plugin's DSS code env (code-env/python/spec/requirements.txt), built once a session."""
    return clean_venv(tmp_path_factory, "plugin", PLUGIN_REQUIREMENTS)


@pytest.fixture(scope="session")
def deploy_env_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv of the deployment env, the notebooks' kernel (notebooks/requirements.txt), built once a session."""
    return clean_venv(tmp_path_factory, "deploy", DEPLOY_REQUIREMENTS)


@pytest.fixture(autouse=True)
def _snowflake_seams(monkeypatch: pytest.MonkeyPatch, account: FakeAccount, hub_snapshot: Path):
    yield from snowflake_seams(monkeypatch, account, hub_snapshot)
