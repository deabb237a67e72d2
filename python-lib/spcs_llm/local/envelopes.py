"""Request envelopes of a Snowflake model service → rows of (row id, inputs, params), checked against a signature.

spcs-protocol.md §C.2 lists the envelopes: FLAT ``{"data": [[id, f1, .., p1, ..]]}``, WIDE
``{"data": [[id, {"f1": v, "param": v}]]}``, DATAFRAME_SPLIT and DATAFRAME_RECORDS (each with ``params``). Errors
are 400 with the inference server's messages (§C.1 "Input data malformed: ...", §C.2 "Input data columns do
not match the model signature", invalid param types → 400).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MALFORMED = "Input data malformed"
COLUMNS_MISMATCH = "Input data columns do not match the model signature"
_NUMERIC = {"DOUBLE", "FLOAT"}
_INTEGER = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}


class EnvelopeError(Exception):
    """A 400 answer; ``str(self)`` is the ``error`` text sent back."""


@dataclass(frozen=True)
class ParamInfo:
    name: str
    dtype: str  # a snowml DataType name, or "GROUP" for a ParamGroupSpec
    is_list: bool
    default: Any


@dataclass(frozen=True)
class MethodSignature:
    """The parts of a snowml ``ModelSignature`` the server needs to read rows."""

    inputs: tuple[str, ...]
    params: tuple[ParamInfo, ...]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


@dataclass(frozen=True)
class Row:
    row_id: Any
    inputs: dict[str, Any]
    params: dict[str, Any]  # only the params the caller sent; defaults are the handler's business


def parse_rows(body: bytes, signature: MethodSignature) -> list[Row]:
    """Parse and validate one request body. Raises ``EnvelopeError`` with the server's 400 message."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"{MALFORMED}: {exc}") from exc
    if not isinstance(payload, dict):
        raise EnvelopeError(f"{MALFORMED}: the body must be a JSON object with a 'data' key.")
    shared = payload.get("params") or {}
    if not isinstance(shared, dict):
        raise EnvelopeError(f"{MALFORMED}: 'params' must be an object.")
    if "data" in payload:
        rows = _external_function_rows(payload["data"], signature)
    elif "dataframe_split" in payload:
        rows = _split_rows(payload["dataframe_split"], signature)
    elif "dataframe_records" in payload:
        rows = _records_rows(payload["dataframe_records"], signature)
    else:
        raise EnvelopeError(f"{MALFORMED}: expected one of 'data', 'dataframe_split', 'dataframe_records'.")
    if shared:
        _check_params(shared, signature)
        rows = [Row(r.row_id, r.inputs, {**shared, **r.params}) for r in rows]
    return rows


def _external_function_rows(data: Any, signature: MethodSignature) -> list[Row]:
    if not isinstance(data, list):
        raise EnvelopeError(f"{MALFORMED}: 'data' must be a list of rows.")
    rows = []
    for row in data:
        if not isinstance(row, list) or not row or isinstance(row[0], bool) or not isinstance(row[0], int):
            raise EnvelopeError(f"{MALFORMED}: each row must be a list starting with its integer row index.")
        # spcs-protocol.md §C.2 WIDE: "The server detects a dict at index 1."
        if len(row) == 2 and isinstance(row[1], dict):
            rows.append(_named_row(row[0], row[1], signature, tolerate_extra=False))
        else:
            rows.append(_positional_row(row[0], row[1:], signature))
    return rows


def _positional_row(row_id: int, values: list[Any], signature: MethodSignature) -> Row:
    # spcs-protocol.md §C.2 FLAT: inputs in signature order then params in order; too few/many columns → 400.
    # That a caller may send only a prefix of the params is [inf] (the documented example sends 8 of 10).
    n_inputs = len(signature.inputs)
    if not n_inputs <= len(values) <= n_inputs + len(signature.params):
        raise EnvelopeError(
            f"{COLUMNS_MISMATCH}: expected {n_inputs} to {n_inputs + len(signature.params)} values after the row "
            f"index ({', '.join(signature.inputs + signature.param_names)}), got {len(values)}."
        )
    inputs = dict(zip(signature.inputs, values[:n_inputs]))
    params = {name: v for name, v in zip(signature.param_names, values[n_inputs:]) if v is not None}
    _check_params(params, signature)
    return Row(row_id, inputs, params)


def _named_row(row_id: Any, values: dict[str, Any], signature: MethodSignature, *, tolerate_extra: bool) -> Row:
    missing = [name for name in signature.inputs if name not in values]
    extra = [k for k in values if k not in signature.inputs and k not in signature.param_names]
    if missing or (extra and not tolerate_extra):
        raise EnvelopeError(
            f"{COLUMNS_MISMATCH}: expected columns {list(signature.inputs)} (params {list(signature.param_names)}), "
            f"missing {missing}, unexpected {extra}."
        )
    params = {k: v for k, v in values.items() if k in signature.param_names and v is not None}
    _check_params(params, signature)
    return Row(row_id, {name: values[name] for name in signature.inputs}, params)


def _split_rows(split: Any, signature: MethodSignature) -> list[Row]:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list) or not isinstance(split.get("data"), list):
        raise EnvelopeError(f"{MALFORMED}: 'dataframe_split' needs 'columns' and 'data' lists.")
    index = split.get("index") or list(range(len(split["data"])))
    if len(index) != len(split["data"]):
        raise EnvelopeError(f"{MALFORMED}: 'index' and 'data' have different lengths.")
    rows = []
    for row_id, values in zip(index, split["data"]):
        if not isinstance(values, list) or len(values) != len(split["columns"]):
            raise EnvelopeError(f"{MALFORMED}: each 'data' row must have one value per column.")
        rows.append(_named_row(row_id, dict(zip(split["columns"], values)), signature, tolerate_extra=False))
    return rows


def _records_rows(records: Any, signature: MethodSignature) -> list[Row]:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise EnvelopeError(f"{MALFORMED}: 'dataframe_records' must be a list of objects.")
    # spcs-protocol.md §C.2 DATAFRAME_RECORDS: "Extra unknown columns are tolerated in records."
    return [_named_row(i, r, signature, tolerate_extra=True) for i, r in enumerate(records)]


def _check_params(params: dict[str, Any], signature: MethodSignature) -> None:
    """spcs-protocol.md §C.2: invalid param types → 400 (strict param validation since 1.31)."""
    by_name = {p.name: p for p in signature.params}
    for name, value in params.items():
        spec = by_name.get(name)
        if spec is None:
            raise EnvelopeError(f"{COLUMNS_MISMATCH}: unknown param {name!r}; params are {list(by_name)}.")
        if value is not None and not _matches(value, spec):
            raise EnvelopeError(f"{MALFORMED}: param {name!r} must be {spec.dtype}{'[]' if spec.is_list else ''}.")


def _matches(value: Any, spec: ParamInfo) -> bool:
    if spec.is_list:
        return isinstance(value, list) and all(_scalar_matches(v, spec.dtype) for v in value)
    return _scalar_matches(value, spec.dtype)


def _scalar_matches(value: Any, dtype: str) -> bool:
    if dtype == "GROUP" or dtype == "OBJECT":
        return isinstance(value, dict)
    if dtype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if dtype in _NUMERIC:
        return isinstance(value, (int, float))
    if dtype in _INTEGER:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if dtype == "STRING":
        return isinstance(value, str)
    return True
