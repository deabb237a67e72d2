"""A bench-only embedding service of fixed capacity: W workers, a queue of Q, constant service time, 429 when full.

``python bench/storm_server.py`` prints ``{"port": N}`` once listening on 127.0.0.1. No model runs: a request
holds one worker for ``service_ms + rows × row_ms`` (asleep, so the machine's two cores stay with the client),
after a network round trip of ``network_ms`` spent before admission (holding nothing, as the stand-in's
``network_latency_ms``). A request that finds all W workers busy and Q requests already waiting is answered
429 at once, with no Retry-After (whether Snowflake's ingress sends one is unknown: the stricter reading). Every
row gets the same 384-float vector, so the client decodes and checks what it would from MiniLM.

A fleet: ``instances`` > 1 runs I such instances, each with its own W workers and queue of Q; the ingress sends
each request to an instance drawn at random (seeded), without looking at its load (inferred: how SPCS balances
across instances is not documented; blind spreading, as a Kubernetes service does, is the stricter reading), so
one instance may answer 429 while another has a free worker. ``chat_reply`` (the JSON text of one row's chat
output) makes it a chat service: every row gets that output instead of a vector.

``POST /_config`` with any of workers, queue, service_ms, row_ms, network_ms, instances, chat_reply sets them (and
resets the counts); ``GET /_stats`` returns the counts. ``fixed_capacity_service()`` runs it for a bench and
``configure``/``stats`` drive it.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
import uvicorn

DIMENSION = 384
UNAUTHORIZED = json.dumps({"code": "390104", "message": "User must login again to access the service."}).encode()
FULL = json.dumps({"error": "Too many requests: the service is at capacity."}).encode()
_rng = random.Random(384)
VECTOR = json.dumps([round(_rng.uniform(-0.2, 0.2), 7) for _ in range(DIMENSION)])


@dataclass
class Settings:
    workers: int = 4
    queue: int = 4
    service_ms: float = 0.0
    row_ms: float = 0.5
    network_ms: float = 50.0
    instances: int = 1
    chat_reply: str = ""


@dataclass
class Counts:
    requests: int = 0
    rows: int = 0
    sent_429: int = 0
    max_admitted: int = 0


@dataclass
class Instance:
    """One service instance: its W workers and how many requests it has admitted (running or queued)."""

    workers: asyncio.Semaphore
    admitted: int = 0


class FixedCapacityService:
    """Raw ASGI app: the admission rule and the timing, nothing else."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.counts = Counts()
        self.admitted = 0
        self.instances: list[Instance] = []
        self.balancer = random.Random(0)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/_config":
            self.settings = Settings(**{**asdict(self.settings), **json.loads(body or b"{}")})
            self.counts, self.instances = Counts(), []
            await self._answer(send, 200, json.dumps(asdict(self.settings)).encode())
        elif scope["path"] == "/_stats":
            await self._answer(send, 200, json.dumps(asdict(self.counts)).encode())
        elif not any(name == b"authorization" for name, _ in scope["headers"]):
            await self._answer(send, 401, UNAUTHORIZED)
        else:
            await self._embed(body, send)

    async def _embed(self, body: bytes, send: Any) -> None:
        settings = self.settings
        if not self.instances:
            self.instances = [Instance(asyncio.Semaphore(settings.workers)) for _ in range(settings.instances)]
        payload = json.loads(body)
        rows = len(payload.get("dataframe_records") or payload.get("data") or [])
        await asyncio.sleep(settings.network_ms / 1000.0)
        instance = self.instances[self.balancer.randrange(len(self.instances))]
        if instance.admitted >= settings.workers + settings.queue:
            self.counts.sent_429 += 1
            await self._answer(send, 429, FULL)
            return
        instance.admitted += 1
        self.admitted += 1
        self.counts.max_admitted = max(self.counts.max_admitted, self.admitted)
        try:
            async with instance.workers:
                await asyncio.sleep((settings.service_ms + rows * settings.row_ms) / 1000.0)
        finally:
            instance.admitted -= 1
            self.admitted -= 1
        self.counts.requests += 1
        self.counts.rows += rows
        output = settings.chat_reply or f'{{"output": {VECTOR}}}'
        answer = '{"data": [' + ", ".join(f"[{i}, {output}]" for i in range(rows)) + "]}"
        await self._answer(send, 200, answer.encode())

    @staticmethod
    async def _answer(send: Any, status: int, content: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


@contextmanager
def fixed_capacity_service() -> Iterator[str]:
    """Run this server in its own process (its event loop never waits for the bench's GIL); yields its URL."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = json.loads(process.stdout.readline())["port"]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def configure(url: str, **settings: float | str) -> dict[str, Any]:
    answer = requests.post(f"{url}/_config", json=settings, timeout=10)
    answer.raise_for_status()
    return answer.json()


def stats(url: str) -> dict[str, Any]:
    answer = requests.get(f"{url}/_stats", timeout=10)
    answer.raise_for_status()
    return answer.json()


def main() -> int:
    # IPPROTO_TCP so that asyncio disables Nagle's algorithm (see spcs_standin.server._bind).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    config = uvicorn.Config(FixedCapacityService(), lifespan="off", log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
