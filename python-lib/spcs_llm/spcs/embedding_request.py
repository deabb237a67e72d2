"""The request body of an embedding batch in the shape the service's signature accepts, and its exact byte cost.

Two shapes, both from Snowflake's REST tests (``RestInferencePayloadFormat`` in snowml's
``registry_model_deployment_test_base.py``):

- ``dataframe_records`` ``{"dataframe_records": [{"sentence": "..."}, ...]}``: what their sentence-transformers REST
  tests send (``registry_sentence_transformers_model_deployment_test.py``). Columns are named and params are left to
  their defaults, so it works whatever params the signature has (1 or 2 for sentence-transformers, by version).
- ``flat`` ``{"data": [[0, "...", null, null], ...]}``: positional, so every signature param needs its null.

Batches are packed by the byte sizes given here; ``body_bytes`` equals ``protocol.payload_size`` of the body for
records, and bounds it from above for flat rows (whose row index has a varying number of digits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from json.encoder import encode_basestring_ascii

from spcs_llm.spcs.config import EmbeddingModelConfig, EmbedRequestFormat
from spcs_llm.spcs.protocol import embedding_record, embedding_row, envelope

_SEPARATOR = len(", ")
_NULL_COLUMN = len(", null")


@dataclass(frozen=True)
class EmbeddingWireFormat:
    request_format: EmbedRequestFormat
    input_column: str
    signature_params: tuple[str, ...]
    max_rows: int  # rows per request: bounds the row index's digits in flat rows

    @classmethod
    def for_config(cls, config: EmbeddingModelConfig) -> EmbeddingWireFormat:
        return cls(config.request_format, config.input_column, config.signature_params, config.rows_per_request)

    def body(self, texts: Sequence[str]) -> dict:
        if self.request_format == "dataframe_records":
            return envelope([embedding_record(text, self.input_column) for text in texts], shape="records")
        return envelope([embedding_row(text, signature_params=len(self.signature_params)) for text in texts],
                        shape="flat")

    @cached_property
    def envelope_bytes(self) -> int:
        """The body's bytes without rows, less one separator (rows are counted with theirs); computed once, as every
        text's size check adds it."""
        empty = envelope([], shape="records" if self.request_format == "dataframe_records" else "flat")
        return len(json.dumps(empty)) - _SEPARATOR

    @cached_property
    def row_overhead(self) -> int:
        """A row's bytes besides its text (key or row index, nulls, separator): the same for every row, so computed
        once rather than per text."""
        if self.request_format == "dataframe_records":
            return len('{: }') + len(json.dumps(self.input_column)) + _SEPARATOR
        index_digits = len(str(max(0, self.max_rows - 1)))
        return len("[, ]") + index_digits + _NULL_COLUMN * len(self.signature_params) + _SEPARATOR

    def row_bytes(self, text: str) -> int:
        """One row's bytes in the body, its separator included (as ``json.dumps`` writes it, ASCII-escaped).

        ``encode_basestring_ascii`` is what ``json.dumps`` calls for a str (the same bytes), without its per-call
        encoder set-up: this runs for every text.
        """
        return self.row_overhead + len(encode_basestring_ascii(text))

    def body_bytes(self, texts: Sequence[str]) -> int:
        return self.envelope_bytes + sum(self.row_bytes(text) for text in texts)

    def describe(self) -> str:
        """How rows go on the wire, for logs and error messages (settings named as DSS shows them)."""
        if self.request_format == "dataframe_records":
            return (f"dataframe_records rows {{{json.dumps(self.input_column)}: <text>}} "
                    f"('Request format', 'Input column')")
        params = ", ".join(self.signature_params) or "no params"
        return f"flat rows [<row>, <text>, null per signature param ({params})] ('Request format', 'Signature params')"
