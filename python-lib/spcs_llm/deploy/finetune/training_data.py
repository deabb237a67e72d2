"""Prompt/response pairs for fine-tuning, from a Snowflake table's rows or a JSONL / CSV file, checked row by row.

The shape is the Snowflake Llama 2 fine-tuning quickstart's: an instruction, an optional input, and the wanted
output, in columns whose names the user may choose. Nothing is skipped silently: a row whose instruction or output
is empty, or a file line that is not a JSON object, fails the whole load with the row numbers to fix.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.finetune.training import TrainingExample
from spcs_llm.deploy.names import is_identifier

FILE_SUFFIXES = (".jsonl", ".json", ".csv")
MAX_LISTED_ROWS = 10


@dataclass(frozen=True)
class TrainingColumns:
    """Which columns (table) or keys (file) hold the instruction, the optional input, and the output."""

    instruction: str = "instruction"
    output: str = "output"
    input: str | None = "input"

    def __post_init__(self) -> None:
        for role, name in (("instruction", self.instruction), ("output", self.output), ("input", self.input)):
            if name is not None and not is_identifier(name):
                raise ConfigurationError(
                    f"The {role} column {name!r} is not a plain column name.",
                    fix=f"Pass --{role}-column with letters, digits and '_' only (e.g. {role}).",
                )

    @property
    def required(self) -> tuple[str, ...]:
        return (self.instruction, self.output)

    @property
    def wanted(self) -> tuple[str, ...]:
        return (self.instruction, *((self.input,) if self.input else ()), self.output)


def missing_columns(available: Iterable[str], columns: TrainingColumns) -> list[str]:
    """The required columns the table or file lacks (Snowflake column names compare case-insensitively)."""
    present = {name.upper() for name in available}
    return [name for name in columns.required if name.upper() not in present]


def require_columns(available: Iterable[str], columns: TrainingColumns, source: str) -> None:
    """Refuse a source without the instruction or output column, listing what it has."""
    available = list(available)
    missing = missing_columns(available, columns)
    if missing:
        raise ConfigurationError(
            f"{source} has no {', '.join(missing)} column (it has: {', '.join(available) or 'no columns'}).",
            fix="Name the columns with --instruction-column / --input-column / --output-column.",
        )


def _value(record: Mapping[str, Any], name: str | None) -> str:
    if name is None:
        return ""
    by_upper = {str(key).upper(): value for key, value in record.items()}
    value = by_upper.get(name.upper())
    return "" if value is None else str(value).strip()


def examples_from_records(records: Iterable[Mapping[str, Any]], columns: TrainingColumns,
                          source: str) -> list[TrainingExample]:
    """One ``TrainingExample`` per record; any record with an empty instruction or output fails the load with
    the 1-based row numbers, so a user fixes the data instead of training on less than they think."""
    examples, empty = [], []
    for number, record in enumerate(records, start=1):
        instruction, output = _value(record, columns.instruction), _value(record, columns.output)
        if not instruction or not output:
            empty.append(number)
            continue
        examples.append(TrainingExample(instruction=instruction, output=output, input=_value(record, columns.input)))
    if empty:
        shown = ", ".join(map(str, empty[:MAX_LISTED_ROWS])) + (" ..." if len(empty) > MAX_LISTED_ROWS else "")
        raise ConfigurationError(
            f"{source}: {len(empty)} row(s) have an empty {columns.instruction} or {columns.output} (rows {shown}).",
            fix="Fill or delete those rows, or filter them out into a view and train on the view.",
        )
    if not examples:
        raise ConfigurationError(f"{source} has no rows.", fix="Point --table or --stage-file at the training pairs.")
    return examples


def check_file_name(path: str) -> None:
    if not path.lower().endswith(FILE_SUFFIXES):
        raise ConfigurationError(
            f"{path} is not a JSONL or CSV file.",
            fix="Give a .jsonl file (one JSON object per line) or a .csv file with a header row.",
        )


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL (one object per line; a .json file may also hold one list) or CSV file."""
    check_file_name(path.name)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(text.splitlines()))
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{path.name} line {number} is not JSON ({exc.msg}).",
                                         fix="Write one JSON object per line.") from None
    bad = [number for number, record in enumerate(records, start=1) if not isinstance(record, dict)]
    if bad:
        raise ConfigurationError(f"{path.name}: record(s) {', '.join(map(str, bad[:MAX_LISTED_ROWS]))} are not "
                                 "JSON objects.", fix="Write each pair as an object with the column names as keys.")
    return records


def examples_from_file(path: Path, columns: TrainingColumns) -> list[TrainingExample]:
    """Read, check the columns of, and convert a JSONL / CSV file of pairs."""
    records = read_records(path)
    keys = dict.fromkeys(key for record in records for key in record)
    require_columns(keys, columns, path.name)
    return examples_from_records(records, columns, path.name)
