"""A constant-time endpoint for measuring client overhead: every authenticated POST gets the same recorded answer.

``python bench/canned_server.py ANSWER_FILE`` prints ``{"port": N}`` once listening on 127.0.0.1. The answer is
a real reply recorded from the stand-in's chat service, so the client parses exactly what it parses in use, but
no model runs: the time left is the HTTP exchange itself, the same for the raw client and the plugin.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

UNAUTHORIZED = json.dumps({"code": "390104", "message": "User must login again to access the service."}).encode()


class CannedAnswer:
    """Raw ASGI app: no router, no request parsing beyond draining the body."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        authorized = any(name == b"authorization" for name, _ in scope["headers"])
        body = self.answer if authorized else UNAUTHORIZED
        headers = self.headers if authorized else [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200 if authorized else 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> int:
    answer = Path(sys.argv[1]).read_bytes()
    # IPPROTO_TCP so that asyncio disables Nagle's algorithm (see spcs_standin.server._bind).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    config = uvicorn.Config(CannedAnswer(answer), lifespan="off", log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
