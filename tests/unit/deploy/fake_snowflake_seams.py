"""Parts of the recording fake session that are not SQL answers: the model spec the server writes for an imported
Hub model, a finished async query, the session's ``file`` (PUT/GET) and ``lineage`` (adapter pins), and the name
helpers the fake modules share. Re-exported by ``fake_snowflake``; import them from there."""

from __future__ import annotations

import json
import threading
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from snowflake.snowpark import AsyncJob, Row
from snowflake.snowpark.exceptions import SnowparkSQLException

if TYPE_CHECKING:
    from fake_snowflake import RecordingSession


def _unquote(name: str) -> str:
    return name.strip().strip('"').upper()


def _last(fqn: str) -> str:
    return _unquote(fqn.split(".")[-1])


def _not_found(what: str) -> SnowparkSQLException:
    message = f"002003 (02000): SQL compilation error: {what} does not exist or not authorized."
    return SnowparkSQLException(message, sql_error_code=2003)


def imported_model_spec(model: str, hf_model: dict[str, Any]) -> str:
    """The model.yaml the server would write for an imported Hub model: chat → OpenAI-chat signature (snowflake-ml
    1.38+ for templates, ``_signatures/utils.py``); sentence-transformers → ``encode``."""
    from snowflake.ml.model import model_signature, openai_signatures

    if hf_model.get("task") == "text-generation":
        method, signature = "__call__", openai_signatures.OPENAI_CHAT_WITH_PARAMS_SIGNATURE["__call__"]
    else:
        method = "encode"
        signature = model_signature.ModelSignature(
            inputs=[model_signature.FeatureSpec("sentence", model_signature.DataType.STRING)],
            outputs=[model_signature.FeatureSpec("output", model_signature.DataType.DOUBLE, shape=(384,))],
        )
    runtime = {"dependencies": {"artifact_repository_map": {}, "pip": "runtimes/gpu/env/requirements.txt"},
               "imports": [], "resource_constraint": {}}
    return yaml.safe_dump({
        "creation_timestamp": "2026-11-22 00:00:00", "env": {"python_version": "3.11", "cuda_version": "12.4",
        "pip": "env/requirements.txt", "snowpark_ml_version": "2.6.0"}, "metadata": None,
        "min_snowpark_ml_version": "1.0.12", "model_type": "huggingface_pipeline", "name": model,
        "models": {model: {"artifacts": {}, "handler_version": "2023-12-01", "model_type": "huggingface_pipeline",
                           "name": model, "options": {"task": hf_model.get("task"), "model": hf_model["hf_model_name"],
                                                      "batch_size": 1}, "path": "model"}},
        "runtimes": {"cpu": runtime, "gpu": runtime}, "signatures": {method: signature.to_dict()},
        "task": "UNKNOWN", "version": "2023-12-01",
    })


class FakeAsyncJob(AsyncJob):
    """A finished query: ``result()`` returns its rows or raises its error."""

    def __init__(self, rows: list[Row], error: Exception | None = None) -> None:
        self.query_id = str(uuid.uuid4())
        self._rows = rows
        self._error = error

    def is_done(self) -> bool:
        return True

    def result(self, result_type: str = "row") -> list[Row]:
        if self._error is not None:
            raise self._error
        return self._rows


class FakeFileOperation:
    """``session.file``: PUT records like the patched ``FileOperation.put`` (conftest.py); GET copies the files of
    ``account.uploaded`` under the asked folder into the target folder, keeping sub-folders. A GET of nothing
    raises: an unexpected download (e.g. of a model manifest) must show up as a test failure."""

    def __init__(self, session: RecordingSession) -> None:
        self._account = session.account

    def put(self, local_file_name: str, stage_location: str, **_: Any) -> list:
        path = Path(local_file_name)
        self._account.uploaded[f"{stage_location.rstrip('/')}/{path.name}"] = path.read_bytes()
        return []

    def get(self, stage_location: str, target_directory: str, **_: Any) -> list[types.SimpleNamespace]:
        prefix = stage_location.rstrip("/") + "/"
        found = {path[len(prefix):]: data for path, data in self._account.uploaded.items() if path.startswith(prefix)}
        if not found:
            raise AssertionError(f"The fake Snowflake session has no files under: {stage_location}")
        for relative, data in found.items():
            target = Path(target_directory, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return [types.SimpleNamespace(file=name, size=len(data), status="DOWNLOADED") for name, data in found.items()]


class FakeLineage:
    """``session.lineage``: the one-step model edges of the account's adapter pins (base → adapter), as the rows
    Snowpark's ``Lineage.trace`` returns (SOURCE_OBJECT / TARGET_OBJECT as JSON, snowflake-ml lineage_node.py)."""

    def __init__(self, session: RecordingSession) -> None:
        self._session = session
        self.traces: list[tuple[str, str | None, str]] = []

    def _node(self, model: str, version: str) -> str:
        account = self._session.account
        return json.dumps({"name": f"{account.database}.{account.schema}.{model}", "domain": "model",
                           "version": version, "status": "ACTIVE", "createdOn": "2026-11-22T00:00:00Z"})

    def trace(self, object_name: str, object_domain: str, *, object_version: str | None = None,
              direction: Any = "both", distance: int = 2) -> Any:
        wanted = (_last(object_name), _unquote(object_version or ""))
        way = str(getattr(direction, "value", direction)).lower()
        self.traces.append((object_name, object_version, way))
        rows = []
        for adapter, base in self._session.account.pins.items():
            edge = {"SOURCE_OBJECT": self._node(*base), "TARGET_OBJECT": self._node(*adapter), "DISTANCE": 1}
            if way in ("upstream", "both") and adapter == wanted:
                rows.append(Row(**edge, DIRECTION="Upstream"))
            if way in ("downstream", "both") and base == wanted:
                rows.append(Row(**edge, DIRECTION="Downstream"))
        return types.SimpleNamespace(collect=lambda **_: rows)


def snowflake_seams(monkeypatch: Any, account: Any, hub_snapshot: Path) -> Iterator[None]:
    """Patch the seams that are not SQL, for one test (a generator for a pytest fixture to ``yield from``):

    * ``FileOperation.put`` — a PUT is a client-side file transfer; the fake records each uploaded file's content
      so tests can read the model manifest that was sent;
    * ``huggingface_hub.snapshot_download`` — tests are offline; it returns ``hub_snapshot``;
    * ``time`` inside snowflake-ml's ``service_ops`` only — its log streamer sleeps 5 s before fetching final logs.
    Platform capabilities are cached per process by snowflake-ml, so they are reset around each test.
    """
    import huggingface_hub
    from snowflake.ml._internal import platform_capabilities
    from snowflake.ml.model._client.ops import service_ops
    from snowflake.snowpark import FileOperation

    platform_capabilities.PlatformCapabilities._instance = None

    def record_put(self: Any, local_file_name: str, stage_location: str, **_: object) -> list:
        local = Path(local_file_name)
        account.uploaded[f"{stage_location.rstrip('/')}/{local.name}"] = local.read_bytes()
        return []

    monkeypatch.setattr(FileOperation, "put", record_put)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **_: str(hub_snapshot))
    monkeypatch.setattr(service_ops, "time", types.SimpleNamespace(sleep=lambda _s: None, time=time.time))
    yield
    for thread in threading.enumerate():
        if thread.name == "service-log-streamer":
            thread.join(timeout=10)
    platform_capabilities.PlatformCapabilities._instance = None
