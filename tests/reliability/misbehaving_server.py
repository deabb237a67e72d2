"""A small HTTP server on 127.0.0.1 that answers like the wrong things a user can point the plugin at.

Each route is one bad environment: a web login page answering 200, a body that is not JSON, JSON that is not a
model-service envelope, vectors of the wrong size or with NaN, a reply missing a row, the ingress's 500
"empty data", a model refusing an over-long prompt, an ingress with a small body limit, and an account host
that serves a web page. Row answers are computed from the row's text, so a test can check that every other
row got exactly its own result.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

DIMENSION = 384
SMALL_BODY_LIMIT = 2_000  # bytes: the /small-limit route answers 413 above this
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in to Snowflake</title></head><body><form action='/session/login'>"
    "<h1>Log in</h1><input name='user'><input name='password' type='password'></form></body></html>"
)
CONTEXT_REFUSAL = (
    "This model's maximum context length is 2048 tokens. However, you requested 250013 tokens in the messages."
)


def fake_vector(text: str, dimension: int = DIMENSION) -> list[float]:
    """A deterministic vector for ``text``: what the misbehaving embedder answers for a healthy row."""
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    return [round((seed[i % len(seed)] - 128) / 128.0 + i * 1e-4, 6) for i in range(dimension)]


def _rows(body: bytes) -> list[tuple[int, str]]:
    """(row index, text) of flat rows, or of ``dataframe_records`` (answered by position, as the real server does)."""
    payload = json.loads(body)
    if "dataframe_records" in payload:
        return [(i, next(iter(record.values()))) for i, record in enumerate(payload["dataframe_records"])]
    return [(row[0], row[1]) for row in payload["data"]]


def _envelope(pairs: list[tuple[int, Any]]) -> dict:
    return {"data": [[index, value] for index, value in pairs]}


def _embed_answer(body: bytes, vector_for: Callable[[str], Any | None]) -> tuple[int, dict]:
    pairs = [(index, {"output": vector_for(text)}) for index, text in _rows(body)]
    return 200, _envelope([(index, value) for index, value in pairs if value["output"] is not None])


def _chat_answer(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


def _json_route(answer: Callable[[bytes], tuple[int, Any]]) -> Callable[[bytes], tuple[int, str, bytes]]:
    def route(body: bytes) -> tuple[int, str, bytes]:
        status, payload = answer(body)
        return status, "application/json", json.dumps(payload).encode()

    return route


def _raw(status: int, content_type: str, text: str) -> Callable[[bytes], tuple[int, str, bytes]]:
    return lambda body: (status, content_type, text.encode())


def _too_long_or_answer(body: bytes) -> tuple[int, Any]:
    if len(body) > 100_000:
        return 400, {"error": CONTEXT_REFUSAL}
    return 200, _envelope([(0, _chat_answer("Short prompts are fine."))])


def _small_limit(body: bytes) -> tuple[int, Any]:
    if len(body) > SMALL_BODY_LIMIT:
        return 413, {"error": "Request Entity Too Large"}
    return _embed_answer(body, fake_vector)


ROUTES: dict[str, Callable[[bytes], tuple[int, str, bytes]]] = {
    "/html-login": _raw(200, "text/html; charset=utf-8", LOGIN_PAGE),
    "/not-json": _raw(200, "application/json", '{"data": [[0, {"output": [0.1, 0.2'),
    "/no-envelope": _json_route(lambda body: (200, {"predictions": [[0.1, 0.2, 0.3]]})),
    "/wrong-dimension": _json_route(
        lambda body: _embed_answer(body, lambda t: fake_vector(t, 5) if "SHORT" in t else fake_vector(t))),
    "/nan-vector": _json_route(
        lambda body: _embed_answer(body, lambda t: [float("nan")] * DIMENSION if "NAN" in t else fake_vector(t))),
    "/missing-row": _json_route(lambda body: _embed_answer(body, lambda t: None if "DROP" in t else fake_vector(t))),
    "/empty-data": _json_route(lambda body: (500, {"error": "empty data"})),
    "/too-long": _json_route(_too_long_or_answer),
    "/small-limit": _json_route(_small_limit),
    "/session/v1/login-request": _raw(200, "text/html", LOGIN_PAGE),
}


class MisbehavingServer:
    """``url`` answers POST ``<route>`` for every route in ``ROUTES``; ``hits`` counts requests per route."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.hits[path] = owner.hits.get(path, 0) + 1
                route = ROUTES.get(path)
                status, content_type, content = route(body) if route else (404, "application/json", b"{}")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
