"""The bad-input / bad-environment catalog's machinery: one ``Case`` per mistake, run through the real DSS
components (``load_component``), checked for a specific typed error whose text names the fix, and — for batch
cases — for every other row's result being intact."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from dataikuapi.dss.llm_tracing import SpanBuilder
from misbehaving_server import MisbehavingServer, fake_vector
from reliability_configs import KeyPair, model_config, pat_preset
from secret_ledger import Exposure

from spcs_llm.core.errors import SpcsLlmError
from spcs_standin.harness import load_component
from spcs_standin.stack import LocalStack


@dataclass
class Env:
    """What a case can use to build its config and its bad environment."""

    stack: LocalStack
    server: MisbehavingServer
    registered_key: KeyPair
    unregistered_key: KeyPair
    reference_vectors: Callable[[list[str]], np.ndarray]
    request: pytest.FixtureRequest
    scratch: dict[str, Any] = field(default_factory=dict)  # what a case's prepare leaves for its config

    @property
    def short_lived_stack(self) -> LocalStack:
        return self.request.getfixturevalue("short_lived_stack")

    def pat(self, **kwargs: Any) -> dict:
        """A PAT preset against the suite's stand-in, with a fresh PAT."""
        return pat_preset(self.stack.issue_pat(**kwargs), self.stack.account_url)

    def embed(self, auth: dict | None = None, endpoint: str | None = None, **params: Any) -> dict:
        return model_config(self.stack.embed_url if endpoint is None else endpoint, auth or self.pat(), **params)

    def chat(self, auth: dict | None = None, endpoint: str | None = None, **params: Any) -> dict:
        return model_config(self.stack.chat_url if endpoint is None else endpoint, auth or self.pat(), **params)

    def misbehaving(self, route: str, **params: Any) -> dict:
        return model_config(self.server.url, pat_preset("misbehaving-server-pat-0042", self.stack.account_url),
                            route=route, **params)


def unused_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, read and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Case:
    """One mistake. Either ``raises`` (a typed error whose message holds ``says`` and whose fix holds ``fix``) or
    ``failed_rows`` (row index → fragment of that row's error; every other row must get its own vector).
    ``prepare`` sets up the bad environment before ``config`` is built."""

    id: str
    component: str
    config: Callable[[Env], dict]
    query: Any
    raises: type[SpcsLlmError] | None = None
    says: str = ""
    fix: str = ""
    failed_rows: dict[int, str] = field(default_factory=dict)
    healthy_vectors: str = "reference"  # "reference" (the stand-in's MiniLM) or "fake" (the misbehaving server)
    settings: dict = field(default_factory=dict)
    prepare: Callable[[Env], object] | None = None

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


def texts_query(texts: list[Any]) -> dict:
    return {"queries": [item if isinstance(item, dict) else {"text": item} for item in texts]}


def chat_query(*contents: str) -> dict:
    return {"messages": [{"role": "user", "content": content} for content in contents]}


def run_case(case: Case, env: Env, exposure: Exposure) -> None:
    if case.prepare is not None:
        case.prepare(env)
    trace = SpanBuilder(case.id)
    if case.raises is not None:
        with pytest.raises(case.raises) as raised:
            model = load_component(case.component, case.config(env))
            model.process(case.query, case.settings, trace)
        error = raised.value
        exposure.add_all([error, trace])
        assert case.says in error.message, f"{case.id}: message lacks {case.says!r}: {error.message}"
        shown = str(error)  # what DSS shows: the message, then "Fix: ..." (a row error carries its fix inline)
        assert "Fix: " in shown, f"{case.id}: the error names no fix: {shown}"
        assert case.fix in shown.split("Fix: ", 1)[1], f"{case.id}: the fix lacks {case.fix!r}: {shown}"
        return
    model = load_component(case.component, case.config(env))
    answer = model.process(case.query, case.settings, trace)
    exposure.add_all([answer, trace])
    check_rows(case, env, answer)


def check_rows(case: Case, env: Env, answer: dict) -> None:
    """The named rows carry their specific error; every other row carries exactly its own vector."""
    responses = answer["responses"]
    queries = case.query["queries"]
    assert len(responses) == len(queries)
    for index, fragment in case.failed_rows.items():
        message = responses[index].get("errorMessage", "")
        assert fragment in message, f"{case.id}: row {index} error lacks {fragment!r}: {message!r}"
        assert "Fix:" in message, f"{case.id}: row {index} error names no fix: {message!r}"
        assert "embedding" not in responses[index]
    healthy = [i for i in range(len(queries)) if i not in case.failed_rows]
    if not healthy:
        return
    texts = [queries[i]["text"] for i in healthy]
    if case.healthy_vectors == "fake":
        expected = np.array([fake_vector(text) for text in texts])
    else:
        expected = env.reference_vectors(texts)
    got = np.array([responses[i].get("embedding") for i in healthy], dtype=float)
    assert got.shape == expected.shape, f"{case.id}: healthy rows lost: {[responses[i] for i in healthy]}"
    assert np.allclose(got, expected, atol=1e-4), f"{case.id}: a healthy row got another row's vector"
