"""The vLLM-mode guided JSON writer: every document it writes validates against its schema (no model needed)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from spcs_standin.guided_json import GuidedJsonWriter, SchemaError, TokenTable

# A toy vocabulary; the toy "model" always prefers the token named in PREFERENCE order, so choices are fixed.
VOCABULARY = ("</s>", "hello", " world", '"', "4", "2", "x", "true", "false", "b", "\n", "\\")
TABLE = TokenTable(VOCABULARY, eos_id=0)


def _model(preference: tuple[str, ...]):
    def next_logits(text: str) -> list[float]:
        step = len(text)  # a deterministic function of what was written so far
        ranked = preference[step % len(preference):] + preference[: step % len(preference)]
        return [float(len(ranked) - ranked.index(t)) if t in ranked else -100.0 for t in VOCABULARY]
    return next_logits


SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 30}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "array", "items": {"type": "number", "maximum": 3}, "minItems": 2, "maxItems": 2},
    {"type": "object", "properties": {"ok": {"type": "boolean"}, "tier": {"enum": ["gold", "basic"]},
                                      "note": {"type": ["string", "null"], "minLength": 8, "maxLength": 9}}},
    {"$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
     "type": "object", "properties": {"points": {"type": "array", "items": {"$ref": "#/$defs/point"}}},
     "required": ["points"]},
    {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}]},
    {"type": "object", "properties": {"kind": {"const": "answer"}}, "required": ["kind", "extra"]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("preference", [("hello", " world", "4", "true", '"'), ('"', "</s>", "x", "2", "false")])
def test_the_document_validates_against_its_schema(schema, preference):
    document = GuidedJsonWriter(schema, TABLE, _model(preference)).write()
    jsonschema.validate(json.loads(document), schema)


def test_leaves_follow_the_models_greedy_choice_and_stop_where_it_would():
    # The model wants "hello world" and then a closing quote: the string leaf is exactly that text.
    def next_logits(text: str) -> list[float]:
        wanted = {'{"greeting": "': "hello", '{"greeting": "hello': " world"}.get(text, '"')
        return [10.0 if token == wanted else 0.0 for token in VOCABULARY]

    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}}
    assert GuidedJsonWriter(schema, TABLE, next_logits).write() == '{"greeting": "hello world"}'


def test_a_schema_it_cannot_follow_is_refused():
    with pytest.raises(SchemaError, match="Only references inside the schema"):
        GuidedJsonWriter({"$ref": "https://example.com/s.json"}, TABLE, _model(("x",))).write()
    with pytest.raises(SchemaError, match="Unsupported JSON Schema type"):
        GuidedJsonWriter({"type": "date"}, TABLE, _model(("x",))).write()
