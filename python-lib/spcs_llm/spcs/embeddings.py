"""EmbeddingClient: many texts → batched, parallel requests → one vector or one error per text, in order.

Batching is the embed path's speed: rows are packed up to a row and byte budget and batches are sent in parallel
under the endpoint's process-wide limiter; with a coalescing window, concurrent calls share requests
(``coalescer.py``). A 413 or a 400 splits the batch in halves until the offending row is alone, so one bad text
costs only its own result. Errors that concern the whole endpoint
(credentials, permissions, a wrong URL) are raised: no row could succeed, and the user must act.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from spcs_llm.core.errors import (
    BadResponseError,
    InputTooLongError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestRejectedError,
    ServiceResumeTimeoutError,
    ServiceUnavailableError,
    SpcsLlmError,
    TransportError,
)
from spcs_llm.core.redaction import get_logger
from spcs_llm.core.registry import REGISTRY
from spcs_llm.core.transport import CallResult
from spcs_llm.dss.embedding import EmbeddingRow, unembeddable_reason
from spcs_llm.spcs.client import ModelClient
from spcs_llm.spcs.coalescer import Coalescer, SharedCall
from spcs_llm.spcs.config import EmbeddingModelConfig
from spcs_llm.spcs.embedding_request import EmbeddingWireFormat
from spcs_llm.spcs.protocol import RowError, looks_like_signature_mismatch, parse_embedding_output, unwrap

log = get_logger(__name__)

LENGTH_BUCKET_RATIO = 1.1  # bench/README.md: padding within 1 % of an exact sort on the mixed corpus
SHORT_ROW_BYTES = 32  # rows this small cost the model about the same whatever their length
MIN_SHARED_REQUEST_ROWS = 8  # bench/results/coalesce.md: 16 one-text callers, 8-row shared requests were fastest
# Sender threads per slot of 'Max parallelism': a thread reads, decodes and checks its answer after giving its slot
# back, so with one thread per slot the slots idle while answers are processed (bench/results/fast_embed.md: 'Max
# parallelism' 16 kept 11.6 requests in flight); a second thread per slot sends meanwhile. Threads start only when
# there are batches for them.
SENDERS_PER_SLOT = 2
SPLITTABLE = (PayloadTooLargeError, RequestRejectedError, InputTooLongError)
ROW_LEVEL = (RateLimitedError, ServiceUnavailableError, TransportError)
ROW_ERROR_FIX = (
    "Embed this text again; if it keeps failing, read the service logs "
    "(CALL SYSTEM$GET_SERVICE_LOGS('<service>', '0', 'model-inference'))."
)

DIMENSION = "spcs.embedding.dimension"  # the vector size an endpoint answers, in the process registry


@dataclass
class EmbeddingBatchResult:
    rows: list[EmbeddingRow]
    prompt_tokens: int = 0
    tokens_estimated: bool = True
    estimated_cost: float = 0.0
    busy_seconds: float = 0.0
    requests: int = 0
    attempts: int = 0
    renewals: int = 0
    retry_reasons: list[str] = field(default_factory=list)
    cold_start_wait_seconds: float = 0.0  # the longest wait of a request for the service to resume

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row.error is not None)


def forget_dimensions() -> None:
    """Drop the embedding dimensions learned per endpoint (tests, or after redeploying a service)."""
    REGISTRY.forget(DIMENSION)


def _length_bucket(size: int) -> int:
    """Rows within a factor LENGTH_BUCKET_RATIO of each other share a bucket; all short rows share bucket 0.

    Buckets rather than an exact sort keep rows of similar length in their input order.
    """
    if size <= SHORT_ROW_BYTES:
        return 0
    return 1 + int(math.log(size / SHORT_ROW_BYTES, LENGTH_BUCKET_RATIO))


def _unusable_text_reason(text: object, size: int, budget: int) -> str | None:
    """Why ``text`` cannot be sent, given ``size``: its request alone (``body_bytes([text])``), measured once by the
    caller so that batch packing reuses the row's size instead of encoding the text again."""
    if size > budget:
        return (
            f"the text makes a {size:,}-byte request, over the {budget:,}-byte request budget. "
            "Fix: split long documents into chunks (the Embed recipe's text splitter) or raise 'Max request bytes'."
        )
    return None


class _Dimension:
    """The endpoint's vector size for one answer's rows: looked up in the registry (under its lock) once per answer
    rather than once per row; the first vector ever seen sets it, as before."""

    def __init__(self, url: str):
        self.url = url
        self.known: int | None = None

    def expected(self, seen: int) -> int:
        if self.known is None:
            self.known = REGISTRY.setdefault(self.url, DIMENSION, lambda: seen)
        return self.known


class EmbeddingClient(ModelClient):
    """Thread-safe; one per configured model."""

    def __init__(self, config: EmbeddingModelConfig):
        super().__init__(config)
        self.config = config
        self.wire = EmbeddingWireFormat.for_config(config)
        self.coalescer: Coalescer[EmbeddingRow, CallResult] | None = None
        if config.coalesce_window_ms > 0:
            self.coalescer = Coalescer(
                window_seconds=config.coalesce_window_ms / 1000.0, full_rows=config.rows_per_request,
                max_workers=SENDERS_PER_SLOT * config.endpoint.max_parallelism,
                plan=self._plan_shared_batches,
                send=self._send_shared_batch, free_slots=lambda: self.transport.state.limiter.free,
            )
        log.info("Embedding requests to %s send %s", config.endpoint.url, self.wire.describe())

    def embed(self, texts: Sequence[str]) -> EmbeddingBatchResult:
        rows: list[EmbeddingRow | None] = [None] * len(texts)
        sendable: list[int] = []
        sizes: dict[int, int] = {}  # a sendable row's bytes in a body (row_bytes), measured once per text
        envelope_bytes, budget = self.wire.envelope_bytes, self.config.max_request_bytes
        for index, text in enumerate(texts):
            reason = unembeddable_reason(text)
            if not reason and isinstance(text, str):
                size = sizes[index] = self.wire.row_bytes(text)
                reason = _unusable_text_reason(text, envelope_bytes + size, budget)
            if reason:
                rows[index] = EmbeddingRow(error=f"Text #{index}: {reason}")
            else:
                sendable.append(index)
        if self.coalescer is not None and sendable:
            coalesced = self.coalescer.submit(sendable, [texts[i] for i in sendable])
            for index, row in zip(sendable, coalesced.rows):
                rows[index] = row
            return self._result(texts, rows, sendable, coalesced.calls)
        calls: list[CallResult] = []
        calls_lock = threading.Lock()

        def send(indices: list[int]) -> None:
            for index, row in zip(indices, self._send_batch([(i, texts[i]) for i in indices], calls, calls_lock)):
                rows[index] = row

        batches = self._plan_batches(texts, sendable, sizes=sizes)
        if batches:
            workers = min(len(batches), SENDERS_PER_SLOT * self.config.endpoint.max_parallelism)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spcs-embed") as pool:
                futures = [pool.submit(send, batch) for batch in batches]
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
                for future in pending:
                    future.cancel()
                for future in done:
                    future.result()
        return self._result(texts, rows, sendable, [SharedCall(call=call, share=1.0) for call in calls])

    def _plan_shared_batches(self, texts: Sequence[str], callers: int) -> list[list[int]]:
        """The rows of ``callers`` concurrent calls, spread over as many requests as they would have sent in parallel
        (up to the endpoint's current in-flight bound) but never under MIN_SHARED_REQUEST_ROWS rows a request.

        One full request would leave all but one of a slow model's workers idle; requests of a row or two would
        use up the in-flight slots a fast model needs for the next callers. A lone caller's plan is unchanged.
        """
        indices = list(range(len(texts)))
        spread = min(callers, self.transport.state.limiter.limit)
        rows = max(MIN_SHARED_REQUEST_ROWS, math.ceil(len(texts) / spread))
        return self._plan_batches(texts, indices, max_rows=rows if callers > 1 else None)

    def _plan_batches(
        self, texts: Sequence[str], indices: list[int], max_rows: int | None = None, sizes: dict[int, int] | None = None
    ) -> list[list[int]]:
        """Pack rows into batches of similar length, longest first, under the row and byte budgets.

        The model pads every row of a batch to its longest one, so mixing a paragraph with short titles makes the
        service compute mostly padding (twice the tokens on a mixed corpus). Longest-first also keeps the slowest
        batches away from the end of the call, where nothing else runs beside them.
        """
        budget = self.config.max_request_bytes - self.wire.envelope_bytes
        max_rows = min(max_rows or self.config.rows_per_request, self.config.rows_per_request)
        if sizes is None:
            sizes = {index: self.wire.row_bytes(texts[index]) for index in indices}
        batches: list[list[int]] = []
        current: list[int] = []
        current_bytes = 0
        for index in sorted(indices, key=lambda i: -_length_bucket(sizes[i])):
            size = sizes[index]
            if current and (len(current) >= max_rows or current_bytes + size > budget):
                batches.append(current)
                current, current_bytes = [], 0
            current.append(index)
            current_bytes += size
        if current:
            batches.append(current)
        return batches

    def _send_shared_batch(self, batch: list[tuple[int, str]]) -> tuple[list[EmbeddingRow], list[CallResult]]:
        calls: list[CallResult] = []
        return self._send_batch(batch, calls, threading.Lock()), calls

    def _send_batch(
        self, batch: list[tuple[int, str]], calls: list[CallResult], calls_lock: threading.Lock
    ) -> list[EmbeddingRow]:
        """One result per (row number, text) of ``batch``, in order; the row number names the row in its error."""
        body = self.wire.body([text for _, text in batch])
        try:
            call = self.transport.post_json(self.config.endpoint.route, body)
        except SPLITTABLE as rejected:
            if looks_like_signature_mismatch(rejected.message):
                raise self._signature_mismatch(rejected) from None  # no row of this shape can succeed
            if len(batch) == 1:
                return [EmbeddingRow.failed(batch[0][0], rejected)]
            log.info("Splitting a batch of %d rows after %s", len(batch), type(rejected).__name__)
            middle = len(batch) // 2
            return (self._send_batch(batch[:middle], calls, calls_lock)
                    + self._send_batch(batch[middle:], calls, calls_lock))
        except ServiceResumeTimeoutError:
            raise  # the service never came up: every other batch would wait as long for nothing
        except ROW_LEVEL as failed:
            return [EmbeddingRow.failed(label, failed) for label, _ in batch]
        with calls_lock:
            calls.append(call)
        outputs = unwrap(call.payload, len(batch))
        dimension = _Dimension(self.config.endpoint.url)
        return [self._row(label, output, dimension) for (label, _), output in zip(batch, outputs)]

    def _signature_mismatch(self, rejected: SpcsLlmError) -> RequestRejectedError:
        return RequestRejectedError(
            f"{rejected.message} The rows did not match the model's signature; this model sends "
            f"{self.wire.describe()}.",
            fix="Read the signature (SHOW FUNCTIONS IN MODEL <model> VERSION <version>, or the deploy output) and "
            "set 'Request format', 'Input column' (the input's name) and, for flat rows, 'Signature params' (every "
            "param, in order) to match; check 'Service protocol' and 'Method route' too.",
            status=rejected.status,
        )

    def _row(self, index: int, output: object, dimension: _Dimension) -> EmbeddingRow:
        if isinstance(output, RowError):
            said = f"the service returned no embedding: {output.message}"
            return EmbeddingRow(error=f"Text #{index}: {said} Fix: {ROW_ERROR_FIX}",
                                failure=BadResponseError(said, fix=ROW_ERROR_FIX))
        try:
            vector = parse_embedding_output(output, protocol=self.config.protocol)
        except BadResponseError as bad:
            return EmbeddingRow.failed(index, bad)
        expected = dimension.expected(len(vector))
        if len(vector) != expected:
            mismatch = BadResponseError(
                f"the service returned a {len(vector)}-dimension vector where earlier ones had {expected}.",
                fix="check that the endpoint serves one embedding model (redeploy or fix the route).",
            )
            return EmbeddingRow.failed(index, mismatch)
        return EmbeddingRow(vector=vector)

    def _result(
        self,
        texts: Sequence[str],
        rows: list[EmbeddingRow | None],
        sendable: list[int],
        calls: list[SharedCall[CallResult]],
    ) -> EmbeddingBatchResult:
        """Totals over the requests this call took part in; busy time (hence cost) is charged by its share."""
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            raise SpcsLlmError(f"Internal error: rows {missing[:5]} got neither a result nor an error.")
        busy = sum(shared.call.busy_seconds * shared.share for shared in calls)
        return EmbeddingBatchResult(
            rows=[row for row in rows if row is not None],
            prompt_tokens=sum(self.counter.count(texts[i]) for i in sendable),
            tokens_estimated=not self.counter.exact,
            estimated_cost=self.rate.dollars(busy),
            busy_seconds=busy,
            requests=len(calls),
            attempts=sum(shared.call.attempts for shared in calls),
            renewals=sum(shared.call.renewals for shared in calls),
            retry_reasons=[r for shared in calls for r in shared.call.retry_reasons],
            cold_start_wait_seconds=max((shared.call.cold_start_wait_seconds for shared in calls), default=0.0),
        )
