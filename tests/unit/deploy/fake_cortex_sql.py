"""The fake account's answers for the "LLM inference in Snowflake" recipe: quoted table names, prompts built with
bind variables, ``AI_COMPLETE`` / ``AI_EMBED`` in ``INSERT … SELECT`` and the output table's ``CREATE … AS SELECT``.

Extends ``fake_snowflake.RecordingSession`` through ``HANDLER_EXTENSIONS`` (importing this module registers it), after
fake_batch.py, whose answers (scored-rows table, service function, error rows) the recipe reuses. Statements sent
with bind values are recorded in ``session.bound`` as ``(statement, params)``. Strict where Snowflake is unknown:
the number of ``?`` must equal the number of values; an unknown Cortex model fails the statement; a prompt in
``failing_prompts`` fails the whole statement it is in (as a failing service function does in fake_batch.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import fake_batch  # noqa: F401 - registers its handlers first: the recipe's scored-rows statements are its own
import fake_snowflake
from fake_snowflake import FakeAccount, RecordingSession, _not_found
from fake_tables import FakeTable, find_table, table_key, tables
from snowflake.snowpark import Row
from snowflake.snowpark.exceptions import SnowparkSQLException

QUOTED = r'"(?:[^"]|"")*"'
QUOTED_FQN = rf"({QUOTED}\.{QUOTED}\.{QUOTED})"
_INSERT = r'^INSERT INTO ([\w.]+) \(ROW_ID, "PROMPT", RESPONSE, ERROR\) SELECT ROW_ID, "PROMPT", '


@dataclass
class FakeCortexState:
    models: dict[str, str] = field(default_factory=lambda: {
        "llama3.1-8b": "chat", "claude-3-5-sonnet": "chat", "snowflake-arctic-embed-m-v1.5": "embedding"})
    failing_prompts: set[str] = field(default_factory=set)
    unanswered_prompts: set[str] = field(default_factory=set)  # the function returns NULL for these
    calls: list[dict[str, Any]] = field(default_factory=list)  # one per scored statement: model, options, rows


def cortex_state(account: FakeAccount) -> FakeCortexState:
    state = getattr(account, "cortex_sql", None)
    if state is None:
        state = FakeCortexState()
        account.cortex_sql = state  # type: ignore[attr-defined]
    return state


def _unquote_identifier(text: str) -> str:
    return text[1:-1].replace('""', '"')


def _split_items(text: str) -> list[str]:
    """Top-level comma-separated items (outside parentheses and quotes)."""
    items, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        current += char
    return [*items, current.strip()]


def _path(value: Any, path: str) -> Any:
    for step in re.findall(r"(\w+)|\[(\d+)\]", path):
        if value is None:
            return None
        value = value.get(step[0]) if step[0] else value[int(step[1])]
    return value


def _cast(value: Any, kind: str) -> Any:
    if value is None or not kind:
        return value
    return str(value) if kind == "VARCHAR" else int(value)


class _Answers:
    def __init__(self, session: RecordingSession) -> None:
        self.session = session
        self.account = session.account
        self.state = cortex_state(session.account)

    def params(self, placeholders: str) -> list[Any]:
        statement, params = self.session.bound[-1]
        values = list(params or [])
        if placeholders.count("?") != len(values):
            raise SnowparkSQLException(f"Bind variable count mismatch: {placeholders.count('?')} placeholders, "
                                       f"{len(values)} values.")
        return values

    def table(self, name: str) -> FakeTable:
        found = find_table(self.account, name)
        if found is None:
            raise _not_found(f"Table '{name}'")
        return found

    def show_columns(self, m: re.Match) -> list[Row]:
        return [Row(table_name=m[1], column_name=name, data_type=kind, kind="COLUMN")
                for name, kind in self.table(m[1]).columns.items()]

    def ddl(self) -> None:
        """Snowflake prepares DML, not DDL: a bind variable in a CREATE statement is refused here."""
        if self.session.bound[-1][1]:
            raise SnowparkSQLException("002049 (42601): SQL compilation error: bind variables in a DDL statement.")

    def _check_columns(self, source: FakeTable, names: list[str]) -> None:
        for name in names:
            if name not in source.columns:
                raise SnowparkSQLException(f"000904 (42000): SQL compilation error: invalid identifier '\"{name}\"'")

    def create_prompts(self, m: re.Match) -> list[Row]:
        self.ddl()
        source = self.table(m[3])
        kept = [_unquote_identifier(q) for q in re.findall(QUOTED, m[2] or "")]
        self._check_columns(source, kept)
        columns = {"ROW_ID": "NUMBER", **{c: source.columns[c] for c in kept}, "PROMPT": "VARCHAR"}
        tables(self.account)[table_key(self.account, m[1])] = FakeTable(columns)
        return [Row(status="Table successfully created.")]

    def fill_prompts(self, m: re.Match) -> list[Row]:
        values = self.params(m.string)
        target, source = self.table(m[1]), self.table(m[5])
        kept = [_unquote_identifier(q) for q in re.findall(QUOTED, m[3] or "")]
        if kept != [_unquote_identifier(q) for q in re.findall(QUOTED, m[2] or "")]:
            raise SnowparkSQLException("The INSERT's columns and its SELECT's differ.")
        term = rf"\?|COALESCE\(({QUOTED})::VARCHAR, ''\)"
        self._check_columns(source, kept + [_unquote_identifier(t) for t in re.findall(term, m[4]) if t])
        for number, row in enumerate(source.rows, start=1):
            bound, text = iter(values), ""
            for piece in re.finditer(term, m[4]):
                text += next(bound) if piece[0] == "?" else str(row.get(_unquote_identifier(piece[1])) or "")
            target.rows.append({"ROW_ID": number, **{c: row[c] for c in kept}, "PROMPT": text})
        return [Row(**{"number of rows inserted": len(source.rows)})]

    def prompt_size(self, m: re.Match) -> list[Row]:
        rows = self.table(m[1]).rows
        return [Row(ROWS_TOTAL=len(rows), PROMPT_CHARS=sum(len(r["PROMPT"] or "") for r in rows))]

    def check_model(self, m: re.Match) -> list[Row]:
        """The model call over no row: the model and task are checked, nothing is scored."""
        values = self.params(m.string)
        task = "embedding" if m[1].startswith("TO_VARIANT(AI_EMBED(") else "chat"
        if self.state.models.get(values[0]) != task:
            raise SnowparkSQLException(
                f"400 (22023): Model '{values[0]}' is unavailable or does not support this task.")
        self.table(m[2])
        return []

    def score(self, m: re.Match) -> list[Row]:
        output, call, source = m[1], m[2], m[3]
        values = self.params(m.string)
        first, last, model = values[-2], values[-1], values[0]
        task = "embedding" if call.startswith("TO_VARIANT(AI_EMBED(") else "chat"
        options = dict(zip(re.findall(r"'(\w+)', \?", call), values[1:-2]))
        if self.state.models.get(model) != task:
            raise SnowparkSQLException(f"400 (22023): Model '{model}' is unavailable or does not support this task.")
        rows = [r for r in self.table(source).rows if first <= r["ROW_ID"] <= last]
        if any(r["PROMPT"] in self.state.failing_prompts for r in rows):
            raise SnowparkSQLException("100357 (P0000): Cortex request failed: the prompt was rejected.")
        self.state.calls.append({"model": model, "task": task, "options": options, "rows": (first, last)})
        answered = []
        for r in rows:
            text = r["PROMPT"]
            response: Any = [float(len(text)), 0.25, -0.25] if task == "embedding" else {
                "choices": [{"messages": f"cortex answer to: {text}"}], "created": 0, "model": model,
                "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 4,
                          "total_tokens": len(text.split()) + 4}}
            if text in self.state.unanswered_prompts:
                response = None
            answered.append({"ROW_ID": r["ROW_ID"], "PROMPT": text, "RESPONSE": response, "ERROR": None})
        self.table(output).rows.extend(answered)
        return [Row(**{"number of rows inserted": len(answered)})]

    def error_row(self, m: re.Match) -> list[Row]:
        message, row_id = self.params(m.string)
        rows = [r for r in self.table(m[2]).rows if r["ROW_ID"] == row_id]
        self.table(m[1]).rows.extend({"ROW_ID": r["ROW_ID"], "PROMPT": r["PROMPT"], "RESPONSE": None,
                                      "ERROR": message} for r in rows)
        return [Row(**{"number of rows inserted": len(rows)})]

    def _value(self, expression: str, p: dict[str, Any], r: dict[str, Any], bound: Any) -> Any:
        if m := re.fullmatch(rf"p\.({QUOTED})", expression):
            return p[_unquote_identifier(m[1])]
        if expression == "r.RESPONSE":
            return r["RESPONSE"]
        if m := re.fullmatch(r"r\.RESPONSE:([\w:\[\]]+?)(?:::(VARCHAR|NUMBER))?", expression):
            return _cast(_path(r["RESPONSE"], m[1]), m[2] or "")
        if m := re.fullmatch(r"\(r\.RESPONSE:([\w:\[\]]+) \* \? \+ r\.RESPONSE:([\w:\[\]]+) \* \?\) / 1000000",
                             expression):
            prompt, completion = _path(r["RESPONSE"], m[1]), _path(r["RESPONSE"], m[2])
            in_rate, out_rate = next(bound), next(bound)
            return None if prompt is None else (prompt * in_rate + completion * out_rate) / 1000000
        if expression == "COALESCE(r.ERROR, CASE WHEN r.RESPONSE IS NULL THEN ? END)":
            message = next(bound)
            return r["ERROR"] if r["ERROR"] is not None else (message if r["RESPONSE"] is None else None)
        raise AssertionError(f"The fake cannot evaluate {expression!r}")

    def create_output(self, m: re.Match) -> list[Row]:
        self.ddl()
        for name in (m[3], m[4]):  # both must exist
            self.table(name)
        items = [re.fullmatch(rf"(.*) AS ({QUOTED})", item) for item in _split_items(m[2])]
        if not all(items):
            raise SnowparkSQLException("Every output column needs a name.")
        tables(self.account)[table_key(self.account, m[1])] = FakeTable(
            {_unquote_identifier(item[2]): "VARIANT" for item in items if item})
        return [Row(status="Table successfully created.")]

    def fill_output(self, m: re.Match) -> list[Row]:
        values = self.params(m.string)
        target = self.table(m[1])
        names = [_unquote_identifier(q) for q in re.findall(QUOTED, m[2])]
        expressions = _split_items(m[3])
        if names != list(target.columns) or len(expressions) != len(names):
            raise SnowparkSQLException(f"The INSERT's columns {names} are not the table's {list(target.columns)}.")
        prompts = {row["ROW_ID"]: row for row in self.table(m[5]).rows}
        for r in sorted(self.table(m[4]).rows, key=lambda row: row["ROW_ID"]):
            bound = iter(values)
            target.rows.append({name: self._value(expression, prompts[r["ROW_ID"]], r, bound)
                                for name, expression in zip(names, expressions)})
        return [Row(**{"number of rows inserted": len(target.rows)})]

    def summary(self, m: re.Match) -> list[Row]:
        rows = self.table(m[1]).rows
        return [Row(ROWS_TOTAL=len(rows), ROWS_FAILED=sum(1 for r in rows if r["ERROR"] is not None))]


def _handlers(session: RecordingSession) -> fake_snowflake.Handlers:
    answers = _Answers(session)
    execute = session.execute
    session.bound = []  # type: ignore[attr-defined]

    def recording_execute(query: str, params: Any) -> list[Row]:
        session.bound.append((" ".join(query.split()), params))  # type: ignore[attr-defined]
        return execute(query, params)

    session.execute = recording_execute  # type: ignore[method-assign]
    return [
        (rf"^SHOW COLUMNS IN TABLE {QUOTED_FQN}$", answers.show_columns),
        (rf"^CREATE TEMPORARY TABLE ([\w.]+) AS SELECT 0::NUMBER AS ROW_ID, ((?:{QUOTED}, )*)NULL::VARCHAR AS "
         rf"\"PROMPT\" FROM {QUOTED_FQN} LIMIT 0$", answers.create_prompts),
        (rf"^INSERT INTO ([\w.]+) \(ROW_ID, ((?:{QUOTED}, )*)\"PROMPT\"\) SELECT ROW_NUMBER\(\) OVER \(ORDER BY "
         rf"SEQ8\(\)\), ((?:{QUOTED}, )*)(.*) FROM {QUOTED_FQN}$", answers.fill_prompts),
        (r'^SELECT COUNT\(\*\) AS ROWS_TOTAL, COALESCE\(SUM\(LENGTH\("PROMPT"\)\), 0\) AS PROMPT_CHARS FROM ([\w.]+)$',
         answers.prompt_size),
        (_INSERT + r"(AI_COMPLETE\(model => \?, .*\)|TO_VARIANT\(AI_EMBED\(\?, \"PROMPT\"\)::ARRAY\)), NULL FROM "
                   r"([\w.]+) WHERE ROW_ID BETWEEN \? AND \?$", answers.score),
        (_INSERT + r"NULL, \? FROM ([\w.]+) WHERE ROW_ID = \?$", answers.error_row),
        (r"^SELECT (AI_COMPLETE\(model => \?, .*\)|TO_VARIANT\(AI_EMBED\(\?, \"PROMPT\"\)::ARRAY\)) AS RESPONSE FROM "
         r"([\w.]+) WHERE ROW_ID < 0$", answers.check_model),
        (rf"^CREATE OR REPLACE TABLE {QUOTED_FQN} AS SELECT (.*) FROM ([\w.]+) r JOIN ([\w.]+) p "
         r"ON p\.ROW_ID = r\.ROW_ID LIMIT 0$", answers.create_output),
        (rf"^INSERT INTO {QUOTED_FQN} \(((?:{QUOTED}(?:, )?)+)\) SELECT (.*) FROM ([\w.]+) r JOIN ([\w.]+) p "
         r"ON p\.ROW_ID = r\.ROW_ID ORDER BY r\.ROW_ID$", answers.fill_output),
        (rf'^SELECT COUNT\(\*\) AS ROWS_TOTAL, COUNT\("ERROR"\) AS ROWS_FAILED FROM {QUOTED_FQN}$', answers.summary),
    ]


if _handlers not in fake_snowflake.HANDLER_EXTENSIONS:
    fake_snowflake.HANDLER_EXTENSIONS.append(_handlers)
