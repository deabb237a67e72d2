"""Server-sent events: the JSON objects of an ``text/event-stream`` body, read as they arrive.

An open stream holds its endpoint's limiter slot and ledger share; ``close()`` hands them back exactly once. It is
called when the events are exhausted or a read fails, and every reader closes it explicitly too (``with`` or
``try/finally``, so a consumer that stops early frees the slot at once); ``__del__`` is only a last resort.
"""

from __future__ import annotations

import codecs
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests

from spcs_llm.core.backend import PLAIN, BackendProfile
from spcs_llm.core.errors import BadResponseError, TransportError
from spcs_llm.core.http_answers import snippet


class EventStream:
    """Iterates the JSON objects of an SSE body's ``data:`` lines until ``[DONE]``; holds the slot until closed."""

    def __init__(self, response: requests.Response, on_close: Callable[[], None], url: str, *,
                 profile: BackendProfile = PLAIN):
        self._response = response
        self._on_close = on_close
        self._url = url
        self._profile = profile  # whose advice a broken stream's error carries
        self._closed = False
        self._lock = threading.Lock()
        self._events = self._parse()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        try:
            return next(self._events)
        except StopIteration:
            self.close()
            raise
        except requests.RequestException as exc:
            self.close()
            raise self._profile.error(
                TransportError,
                f"The stream from {self._url} broke off ({type(exc).__name__}); it is not retried once started."
            ) from None
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_events"):  # last resort only: readers close explicitly
            self.close()

    def close(self) -> None:
        """Stop reading, free the connection, and release the limiter slot and ledger share (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._response.close()
        finally:
            self._on_close()

    def _lines(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        # chunk_size=None yields each chunk of a chunked (SSE) body as it arrives instead of filling a buffer.
        for chunk in self._response.iter_content(chunk_size=None):
            pending += decoder.decode(chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                yield line.rstrip("\r")
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending.rstrip("\r")

    def _parse(self) -> Iterator[Any]:
        data: list[str] = []
        for line in itertools.chain(self._lines(), [""]):
            if line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
                continue
            if line or not data:
                continue  # comments, other fields, blank lines between events
            text = "\n".join(data)
            data = []
            if text.strip() == "[DONE]":
                return
            try:
                yield json.loads(text)
            except ValueError:
                raise self._profile.error(
                    BadResponseError, f"{self._url} streamed an event that is not JSON: {snippet(text)!r}."
                ) from None
