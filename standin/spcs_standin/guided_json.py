"""Schema-guided JSON for the stand-in's vLLM mode: a JSON document that validates against a JSON Schema.

vLLM honours ``response_format: {"type": "json_schema", ...}`` with guided decoding (snowml's
``openai_signatures.py`` ``_RESPONSE_FORMAT_PARAM_SPEC`` cites the OpenAI/vLLM structured-output shape). This
is a small version of it: the schema fixes the structure (objects, arrays, keys, punctuation) and the tiny model
chooses every free leaf by greedy decoding, restricted to tokens that keep the document valid: string text,
digits, true/false, and among ``enum`` values the most likely one. Covered: type (or a list of types), object
properties/required, array items/minItems/maxItems, string minLength/maxLength, number/integer bounds, enum,
const, $ref into the same document, anyOf/oneOf (first branch), allOf (merged). Not covered: ``pattern`` and
``format`` (a generated string may not match them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Leaf lengths in tokens: enough for a few words or digits from a tiny model, bounded so a request stays fast.
MAX_STRING_TOKENS = 12
MAX_NUMBER_TOKENS = 4


class SchemaError(ValueError):
    """The schema asks for something this guided decoder cannot produce."""


@dataclass(frozen=True)
class TokenTable:
    """The decoded text of every vocabulary entry, grouped by the leaf kinds that may use it."""

    texts: tuple[str, ...]
    eos_id: int

    def string_safe(self, token_id: int) -> bool:
        text = self.texts[token_id]
        return bool(text) and token_id != self.eos_id and all(c not in '"\\' and c >= " " for c in text)

    def digits(self, token_id: int) -> bool:
        return token_id != self.eos_id and self.texts[token_id].isdigit()


# next_logits(text) → the model's next-token logits after ``prompt + text`` (prompt bound by the caller).
NextLogits = Callable[[str], Sequence[float]]


class GuidedJsonWriter:
    """Writes one JSON value for ``schema``, asking ``next_logits`` for each free choice."""

    def __init__(self, schema: dict[str, Any], tokens: TokenTable, next_logits: NextLogits) -> None:
        if not isinstance(schema, dict):
            raise SchemaError("The json_schema 'schema' must be a JSON object.")
        self.root = schema
        self.tokens = tokens
        self.next_logits = next_logits
        self.text = ""

    def write(self) -> str:
        self._value(self.root)
        json.loads(self.text)  # the writer's own invariant: what it wrote parses
        return self.text

    # --- structure -------------------------------------------------------------------------------------------

    def _value(self, schema: dict[str, Any]) -> None:
        schema = self._resolved(schema)
        if "const" in schema:
            self.text += json.dumps(schema["const"])
        elif "enum" in schema:
            self.text += self._most_likely([json.dumps(option) for option in schema["enum"]])
        else:
            {"object": self._object, "array": self._array, "string": self._string, "integer": self._integer,
             "number": self._integer, "boolean": self._boolean, "null": self._null}[_type_of(schema)](schema)

    def _object(self, schema: dict[str, Any]) -> None:
        properties = dict(schema.get("properties") or {})
        for name in schema.get("required") or []:
            properties.setdefault(name, {"type": "string"})
        self.text += "{"
        for index, (name, child) in enumerate(properties.items()):
            self.text += (", " if index else "") + json.dumps(name) + ": "
            self._value(child if isinstance(child, dict) else {})
        self.text += "}"

    def _array(self, schema: dict[str, Any]) -> None:
        count = max(int(schema.get("minItems", 0)), 1)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        self.text += "["
        for index in range(count):
            self.text += ", " if index else ""
            self._value(items)
        self.text += "]"

    def _resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self._follow(schema["$ref"])
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self._resolved(schema[key][0])
        if schema.get("allOf"):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged.update(self._resolved(part))
            return merged
        return schema

    def _follow(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise SchemaError(f"Only references inside the schema are supported, not {ref!r}.")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise SchemaError(f"The reference {ref!r} does not point at a schema.")
        return node

    # --- leaves chosen by the model ----------------------------------------------------------------------------

    def _string(self, schema: dict[str, Any]) -> None:
        self.text += '"'
        value = self._greedy(self.tokens.string_safe, MAX_STRING_TOKENS, ends=lambda t: '"' in t)
        value = value[: int(schema.get("maxLength", len(value)))]
        value += "x" * max(0, int(schema.get("minLength", 0)) - len(value))
        self.text = self.text[:-1] + json.dumps(value)

    def _integer(self, schema: dict[str, Any]) -> None:
        digits = self._greedy(self.tokens.digits, MAX_NUMBER_TOKENS, ends=lambda t: not t.isdigit()) or "0"
        number = int(digits)
        low = schema.get("minimum", schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else None)
        high = schema.get("maximum", schema["exclusiveMaximum"] - 1 if "exclusiveMaximum" in schema else None)
        if low is not None:
            number = max(number, int(-(-low // 1)))
        if high is not None:
            number = min(number, int(high // 1))
        if schema.get("multipleOf"):
            number = int(number // schema["multipleOf"] * schema["multipleOf"])
        self.text += str(number)

    def _boolean(self, schema: dict[str, Any]) -> None:
        self.text += self._most_likely(["true", "false"])

    def _null(self, schema: dict[str, Any]) -> None:
        self.text += "null"

    def _greedy(self, allowed: Callable[[int], bool], limit: int, ends: Callable[[str], bool]) -> str:
        """Greedy decoding over the allowed tokens; stops when the model's own first choice would end the leaf."""
        generated = ""
        for _ in range(limit):
            logits = self.next_logits(self.text + generated)
            best = max(range(len(logits)), key=logits.__getitem__)
            if generated and (best == self.tokens.eos_id or ends(self.tokens.texts[best])):
                break
            choice = max((i for i in range(len(logits)) if allowed(i)), key=logits.__getitem__, default=None)
            if choice is None:
                break
            generated += self.tokens.texts[choice]
        return generated

    def _most_likely(self, options: list[str]) -> str:
        """The option whose first differing character the model scores highest (greedy, like guided decoding)."""
        logits = self.next_logits(self.text)
        scored = [(max((logits[i] for i, t in enumerate(self.tokens.texts) if t and option.startswith(t)),
                       default=float("-inf")), -index, option) for index, option in enumerate(options)]
        return max(scored)[2]


def _type_of(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), declared[0] if declared else None)
    if declared is None:
        declared = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if declared not in ("object", "array", "string", "integer", "number", "boolean", "null"):
        raise SchemaError(f"Unsupported JSON Schema type {declared!r}.")
    return declared
