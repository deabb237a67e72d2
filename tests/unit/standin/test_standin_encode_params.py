"""The stand-in's /encode passes the caller's MiniLM params to ``SentenceTransformer.encode`` as snowml 2.6 does."""

from __future__ import annotations

import json

import numpy as np
from snowflake.ml.model._signatures import core

from spcs_standin.envelopes import MethodSignature
from spcs_standin.inference import ModelRuntime
from spcs_standin.packaging import PackagedModel
from spcs_standin.settings import ServiceSpec

ENCODE = MethodSignature(("sentence",), (core.ParamSpec("batch_size", core.DataType.INT64, None),
                                         core.ParamSpec("truncate_dim", core.DataType.INT64, None)))
SPEC = ServiceSpec("embed", "encode", "embed")


class RecordingEncoder:
    """Stands for the loaded SentenceTransformer: records each encode call's keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def encode(self, sentences: list[str], **kwargs) -> np.ndarray:
        self.calls.append(kwargs)
        return np.ones((len(sentences), kwargs.get("truncate_dim") or 6))


def _runtime() -> tuple[ModelRuntime, RecordingEncoder]:
    runtime, encoder = ModelRuntime(), RecordingEncoder()
    runtime._models["embed"] = PackagedModel(encoder, {"encode": ENCODE})
    return runtime, encoder


def _encode(runtime: ModelRuntime, payload: dict):
    result = runtime.handle(SPEC, "encode", json.dumps(payload).encode())
    return result.status, json.loads(result.body)


def test_batch_size_and_truncate_dim_reach_encode():
    runtime, encoder = _runtime()
    status, answer = _encode(runtime, {"dataframe_records": [{"sentence": "a"}, {"sentence": None}],
                                       "params": {"batch_size": 7, "truncate_dim": 3}})
    assert status == 200 and encoder.calls == [{"convert_to_numpy": True, "batch_size": 7, "truncate_dim": 3}]
    assert answer == {"data": [[0, {"output": [1.0, 1.0, 1.0]}], [1, {"output": None}]]}  # null sentence → null


def test_unset_params_are_left_to_sentence_transformers():
    runtime, encoder = _runtime()
    assert _encode(runtime, {"data": [[0, "a", None, None]]})[0] == 200
    assert encoder.calls == [{"convert_to_numpy": True}]


def test_a_batch_size_below_one_is_refused_before_encoding():
    runtime, encoder = _runtime()
    status, answer = _encode(runtime, {"data": [[0, "a", 0, None]]})
    assert status == 400 and "batch_size must be a positive integer" in answer["error"] and encoder.calls == []
