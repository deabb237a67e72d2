"""Request envelopes of a Snowflake model service → rows plus one set of resolved params, checked like the server.

The four envelopes are those of Snowflake's registry tests (``RestInferencePayloadFormat`` in
``tests/integ/snowflake/ml/registry/services/registry_model_deployment_test_base.py``):

- FLAT ``{"data": [[i, input1, .., param1, ..]]}``: EVERY signature column, inputs then params in signature order
  (``null`` for a param = its default). ``registry_custom_model_params_test.py``: "Flat format requires ALL
  columns present"; too few (``[0, 10.0, 1, 2]``) and too many columns → 400. ``registry_transformer_params_test.py``
  does the same for chat (``[0, messages, 0.8]`` → 400).
- WIDE ``{"data": [[i, {"input1": v, "param": v}]]}``: the server detects a dict at index 1; params are merged into
  the dict and missing ones take their defaults.
- DATAFRAME_SPLIT / DATAFRAME_RECORDS: params in a top-level ``params`` object; extra columns are accepted when
  listed in a top-level ``extra_columns`` (``registry_dataframe_protocols_test.py``). Answers use the row position.

Params are validated and resolved by snowml's own ``param_ops`` (copied into the inference server, per its
header); a ``null`` param means "use the default" (the params test's "none" cases get the defaults).
Where Snowflake's tests record the real server as silently lenient (their TODOs), the stand-in refuses instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MALFORMED = "Input data malformed"
COLUMNS_MISMATCH = "Input data columns do not match the model signature"
_ENVELOPES = ("data", "dataframe_split", "dataframe_records")


class EnvelopeError(Exception):
    """A 400 answer; ``str(self)`` is the ``error`` text sent back."""


@dataclass(frozen=True)
class MethodSignature:
    """The parts of a snowml ``ModelSignature`` the server needs: input names and the recorded param specs."""

    inputs: tuple[str, ...]
    params: tuple[Any, ...] = ()  # snowml ParamSpec / ParamGroupSpec objects, in signature order

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.inputs + self.param_names


@dataclass(frozen=True)
class Row:
    row_id: Any
    inputs: dict[str, Any]


@dataclass(frozen=True)
class ParsedRequest:
    rows: list[Row]
    params: dict[str, Any] = field(default_factory=dict)  # every signature param: defaults, then what was sent


def parse_request(body: bytes, signature: MethodSignature) -> ParsedRequest:
    """Parse and validate one request body. Raises ``EnvelopeError`` with the server's 400 message."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"{MALFORMED}: {exc}") from exc
    if not isinstance(payload, dict):
        raise EnvelopeError(f"{MALFORMED}: the body must be a JSON object with a 'data' key.")
    present = [key for key in _ENVELOPES if key in payload]
    if len(present) != 1:
        raise EnvelopeError(f"{MALFORMED}: expected exactly one of 'data', 'dataframe_split', 'dataframe_records'.")
    envelope = present[0]
    allowed = {envelope} if envelope == "data" else {envelope, "params", "extra_columns"}
    unexpected = sorted(set(payload) - allowed)
    if unexpected:
        # Inferred: what the server does with a top-level 'params' next to 'data' is unknown (the tests put
        # params in the rows there), so the stricter reading refuses it rather than ignoring it.
        raise EnvelopeError(f"{MALFORMED}: unexpected top-level key(s) {unexpected} with '{envelope}'; "
                            "'data' rows carry their params in the row, 'params' goes with dataframe_split/records.")
    if envelope == "data":
        rows, sent = _external_function_rows(payload["data"], signature)
    else:
        extra = payload.get("extra_columns") or []
        if not isinstance(extra, list) or not all(isinstance(c, str) for c in extra):
            raise EnvelopeError(f"{MALFORMED}: 'extra_columns' must be a list of column names.")
        shared = payload.get("params") or {}
        if not isinstance(shared, dict):
            raise EnvelopeError(f"{MALFORMED}: 'params' must be an object.")
        frames = _split_frames if envelope == "dataframe_split" else _records_frames
        rows = [_frame_row(i, values, signature, set(extra)) for i, values in enumerate(frames(payload[envelope]))]
        sent = [shared] * len(rows) if rows else [shared]
    return ParsedRequest(rows, _resolve(sent, signature))


def _external_function_rows(data: Any, signature: MethodSignature) -> tuple[list[Row], list[dict[str, Any]]]:
    if not isinstance(data, list):
        raise EnvelopeError(f"{MALFORMED}: 'data' must be a list of rows.")
    rows, sent = [], []
    for row in data:
        if not isinstance(row, list) or not row or isinstance(row[0], bool) or not isinstance(row[0], int):
            raise EnvelopeError(f"{MALFORMED}: each row must be a list starting with its integer row index.")
        if len(row) >= 2 and isinstance(row[1], dict):
            if len(row) > 2:
                # registry_custom_model_params_test.py "trailing_positional_params": the real server ignores values
                # after the dict and uses the defaults; the stand-in refuses, so a caller never loses params silently.
                raise EnvelopeError(f"{COLUMNS_MISMATCH}: a row with a column object at index 1 must end there; "
                                    "put params inside the object.")
            inputs, params = _named_row(row[1], signature)
        else:
            inputs, params = _positional_row(row[1:], signature)
        rows.append(Row(row[0], inputs))
        sent.append(params)
    return rows, sent


def _positional_row(values: list[Any], signature: MethodSignature) -> tuple[dict[str, Any], dict[str, Any]]:
    # registry_custom_model_params_test.py: "Flat format requires ALL columns present" (too few/many → 400).
    if len(values) != len(signature.columns):
        raise EnvelopeError(
            f"{COLUMNS_MISMATCH}: a flat row carries every column after the row index, inputs then params in "
            f"signature order ({', '.join(signature.columns)}): expected {len(signature.columns)} values, got "
            f"{len(values)}. Send null for a param to use its default."
        )
    n_inputs = len(signature.inputs)
    return dict(zip(signature.inputs, values[:n_inputs])), dict(zip(signature.param_names, values[n_inputs:]))


def _named_row(values: dict[str, Any], signature: MethodSignature) -> tuple[dict[str, Any], dict[str, Any]]:
    missing = [name for name in signature.inputs if name not in values]
    params_upper = {name.upper() for name in signature.param_names}  # param names are case-insensitive (param_ops)
    # registry_custom_model_params_test.py TODO "wide / too_many_cols": the real server ignores unknown keys in
    # the wide dict; the stand-in refuses them (stricter).
    extra = [k for k in values if k not in signature.inputs and k.upper() not in params_upper]
    if missing or extra:
        raise EnvelopeError(f"{COLUMNS_MISMATCH}: expected columns {list(signature.inputs)} (params "
                            f"{list(signature.param_names)}), missing {missing}, unexpected {extra}.")
    return ({name: values[name] for name in signature.inputs},
            {k: v for k, v in values.items() if k not in signature.inputs})


def _split_frames(split: Any) -> list[dict[str, Any]]:
    if not (isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list)):
        raise EnvelopeError(f"{MALFORMED}: 'dataframe_split' needs 'columns' and 'data' lists.")
    if "index" in split and (not isinstance(split["index"], list) or len(split["index"]) != len(split["data"])):
        raise EnvelopeError(f"{MALFORMED}: 'index' and 'data' have different lengths.")
    frames = []
    for values in split["data"]:
        if not isinstance(values, list) or len(values) != len(split["columns"]):
            raise EnvelopeError(f"{MALFORMED}: each 'data' row must have one value per column.")
        frames.append(dict(zip(split["columns"], values)))
    return frames


def _records_frames(records: Any) -> list[dict[str, Any]]:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise EnvelopeError(f"{MALFORMED}: 'dataframe_records' must be a list of objects.")
    return records


def _frame_row(position: int, values: dict[str, Any], signature: MethodSignature, extra_columns: set[str]) -> Row:
    missing = [name for name in signature.inputs if name not in values]
    # registry_dataframe_protocols_test.py: extra columns pass when named in 'extra_columns'. Without it the real
    # server ignores them (TODO "too_many_cols" in registry_custom_model_params_test.py); the stand-in refuses.
    extra = [k for k in values if k not in signature.inputs and k not in extra_columns]
    if missing or extra:
        raise EnvelopeError(f"{COLUMNS_MISMATCH}: expected columns {list(signature.inputs)}, missing {missing}, "
                            f"unexpected {extra} (params go in the top-level 'params'; list other columns in "
                            "'extra_columns').")
    return Row(position, {name: values[name] for name in signature.inputs})


def _resolve(sent_per_row: list[dict[str, Any]], signature: MethodSignature) -> dict[str, Any]:
    """Validate each row's params with snowml's ``param_ops`` and resolve them over the signature defaults.

    Every row of one request must resolve to the same params: the real server applies the first row's
    (registry_custom_model_params_test.py TODO "varying_params_across_rows"); the stand-in refuses instead.
    """
    from snowflake.ml.model._client.ops import param_ops

    resolved: dict[str, Any] | None = None
    checked: set[str] = set()  # rows usually repeat the same params: validate each distinct set once
    for sent in sent_per_row:
        given = {name: value for name, value in sent.items() if value is not None}
        key = json.dumps(given, sort_keys=True)
        if key in checked:
            continue
        checked.add(key)
        try:
            param_ops.validate_params(given, signature.params)
            row_params = param_ops.resolve_params(given, signature.params) if signature.params else {}
        except (ValueError, TypeError) as exc:
            raise EnvelopeError(f"{MALFORMED}: {exc}") from exc
        if resolved is not None and row_params != resolved:
            raise EnvelopeError(f"{MALFORMED}: every row of one request must carry the same params; send rows "
                                "with different params in separate requests.")
        resolved = row_params
    return resolved or {}
