"""Snowflake SQL text → tokens: the lexical rules the stand-in warehouse follows.

- String literals are single-quoted; inside them ``''`` and backslash escapes (``\\'``, ``\\\\``, ``\\n``, ``\\t``,
  ``\\0``, ``\\r``, ``\\b``, ``\\f``) are read as Snowflake reads them ("String & binary data types", escape sequences
  in single-quoted string constants: https://docs.snowflake.com/en/sql-reference/data-types-text). Dollar-quoted
  constants (``$$…$$``) are not part of the supported grammar and are refused.
- Double-quoted identifiers keep their exact case, ``""`` is one ``"``; unquoted identifiers are folded to upper
  case ("Identifier requirements": https://docs.snowflake.com/en/sql-reference/identifiers-syntax).
- ``?`` is a positional bind variable (qmark binding, as Snowpark's ``Session.sql(query, params=[...])`` sends it).
- Comments (``--``, ``//`` to the end of the line, ``/* … */``) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from spcs_standin.warehouse.errors import SqlError

_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}
# Longest first: two-character operators before their one-character prefixes.
_OPERATORS = ("::", "=>", "<=", ">=", "<>", "!=", "||", "(", ")", ",", ".", ":", "[", "]", "*", "+", "-", "/", "=",
              "<", ">", ";", "%")


@dataclass(frozen=True)
class Token:
    kind: str  # "word" (unquoted identifier or keyword), "quoted", "string", "number", "param", "op"
    text: str  # word: as written; quoted / string: the decoded value; op / number / param: as written
    position: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.text in ops

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def _string(sql: str, start: int) -> tuple[str, int]:
    value, i = [], start + 1
    while i < len(sql):
        char = sql[i]
        if char == "\\" and i + 1 < len(sql):
            value.append(_ESCAPES.get(sql[i + 1], sql[i + 1]))
            i += 2
        elif char == "'" and sql[i + 1:i + 2] == "'":
            value.append("'")
            i += 2
        elif char == "'":
            return "".join(value), i + 1
        else:
            value.append(char)
            i += 1
    raise SqlError(f"SQL compilation error: unterminated string literal at position {start}.", sql)


def _quoted(sql: str, start: int) -> tuple[str, int]:
    value, i = [], start + 1
    while i < len(sql):
        if sql[i] == '"' and sql[i + 1:i + 2] == '"':
            value.append('"')
            i += 2
        elif sql[i] == '"':
            if not value:
                raise SqlError(f"SQL compilation error: empty quoted identifier at position {start}.", sql)
            return "".join(value), i + 1
        else:
            value.append(sql[i])
            i += 1
    raise SqlError(f"SQL compilation error: unterminated quoted identifier at position {start}.", sql)


def tokenize(sql: str) -> list[Token]:
    """The tokens of one statement's text; anything outside the lexical rules above is refused."""
    tokens: list[Token] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith(("--", "//"), i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise SqlError(f"SQL compilation error: unterminated comment at position {i}.", sql)
            i = end + 2
        elif char == "'":
            value, end = _string(sql, i)
            tokens.append(Token("string", value, i))
            i = end
        elif char == '"':
            value, end = _quoted(sql, i)
            tokens.append(Token("quoted", value, i))
            i = end
        elif char == "?":
            tokens.append(Token("param", "?", i))
            i += 1
        elif char.isdigit():
            end = i
            while end < len(sql) and (sql[end].isdigit() or (sql[end] == "." and sql[end + 1:end + 2].isdigit())):
                end += 1
            tokens.append(Token("number", sql[i:end], i))
            i = end
        elif char.isalpha() or char == "_":
            end = i
            while end < len(sql) and (sql[end].isalnum() or sql[end] in "_$"):
                end += 1
            tokens.append(Token("word", sql[i:end], i))
            i = end
        else:
            op = next((o for o in _OPERATORS if sql.startswith(o, i)), None)
            if op is None:
                raise SqlError(f"SQL compilation error: syntax error at position {i}: unexpected {char!r}.", sql)
            tokens.append(Token("op", op, i))
            i += len(op)
    return tokens


def folded(token: Token) -> str:
    """An identifier as Snowflake stores it: unquoted → upper case, quoted → exactly as written."""
    return token.text.upper() if token.kind == "word" else token.text
