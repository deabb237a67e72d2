"""``AI_COMPLETE`` and ``AI_EMBED`` calls in SQL → the warehouse's DuckDB functions (``cortex_functions.py``).

Arguments are positional or named (``name => value``), as the function pages document
(https://docs.snowflake.com/en/sql-reference/functions/ai_complete-single-string,
https://docs.snowflake.com/en/sql-reference/functions/ai_embed). Stricter than documented, each inferred: a call mixing
positional and named arguments is refused; ``show_details`` must be the constant TRUE or FALSE (it decides the
result's type: an OBJECT with the details, or the reply as a string); ``response_format`` is refused (the stand-in's
tiny models cannot follow a schema, and nothing here sends one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spcs_standin.warehouse.expressions import Translator

# AI_COMPLETE(<model>, <prompt> [, <model_parameters>, <response_format>, <show_details>]) and AI_EMBED(<model>,
# <input>), in the documented order.
AI_SIGNATURES = {"AI_COMPLETE": ("MODEL", "PROMPT", "MODEL_PARAMETERS", "RESPONSE_FORMAT", "SHOW_DETAILS"),
                 "AI_EMBED": ("MODEL", "INPUT")}
COMPLETE_FUNCTION = "warehouse_ai_complete"  # returns the reply (VARCHAR)
COMPLETE_DETAILS_FUNCTION = "warehouse_ai_complete_details"  # returns the details object (JSON)
EMBED_FUNCTION = "warehouse_ai_embed"  # returns the vector (DOUBLE[])
REQUIRED = {"AI_COMPLETE": ("MODEL", "PROMPT"), "AI_EMBED": ("MODEL", "INPUT")}


def _by_name(translator: Translator, name: str, ranges: list[tuple[int, int]]) -> dict[str, tuple[int, int]]:
    signature = AI_SIGNATURES[name]
    tokens = translator.tokens
    named = [tokens[a].kind == "word" and b - a >= 3 and tokens[a + 1].is_op("=>") for a, b in ranges]
    if any(named) and not all(named):
        raise translator.fail(f"SQL compilation error: {name} takes either positional or named arguments, not both.")
    if not any(named):
        if len(ranges) > len(signature):
            raise translator.fail(f"SQL compilation error: too many arguments for {name} ({len(ranges)}).")
        return dict(zip(signature, ranges))
    given: dict[str, tuple[int, int]] = {}
    for a, b in ranges:
        argument = tokens[a].upper
        if argument not in signature:
            raise translator.fail(f"SQL compilation error: {name} has no argument named {tokens[a].text!r} "
                                  f"(its arguments: {', '.join(s.lower() for s in signature)}).")
        if argument in given:
            raise translator.fail(f"SQL compilation error: argument {tokens[a].text!r} is given twice to {name}.")
        given[argument] = (a + 2, b)
    return given


def _show_details(translator: Translator, given: dict[str, tuple[int, int]]) -> bool:
    if "SHOW_DETAILS" not in given:
        return False
    a, b = given["SHOW_DETAILS"]
    token = translator.tokens[a]
    if b - a != 1 or not token.is_word("TRUE", "FALSE"):
        raise translator.fail("The stand-in warehouse needs show_details to be the constant TRUE or FALSE.")
    return token.is_word("TRUE")


def ai_call(translator: Translator, name: str, ranges: list[tuple[int, int]]) -> str:
    """The DuckDB call for one ``AI_COMPLETE`` / ``AI_EMBED``; records it in the statement's scope."""
    given = _by_name(translator, name, ranges)
    missing = [argument.lower() for argument in REQUIRED[name] if argument not in given]
    if missing:
        raise translator.fail(f"SQL compilation error: {name} needs the argument(s) {', '.join(missing)}.")
    translator.scope.ai_calls.append(name)
    first, last = given["MODEL"]
    token = translator.tokens[first]
    if last - first == 1 and token.kind in ("string", "param"):
        # The model is known before any row is read: an unknown one fails the statement even over no rows.
        where = token.text if token.kind == "string" else sum(t.kind == "param" for t in translator.tokens[:first])
        translator.scope.ai_models.append((name, where))
    model = translator.range(first, last)
    if name == "AI_EMBED":
        return f"{EMBED_FUNCTION}(CAST({model} AS VARCHAR), CAST({translator.range(*given['INPUT'])} AS VARCHAR))"
    response_format = given.get("RESPONSE_FORMAT")
    if response_format is not None and not (response_format[1] - response_format[0] == 1
                                            and translator.tokens[response_format[0]].is_word("NULL")):
        raise translator.fail("The stand-in warehouse does not support AI_COMPLETE's response_format.")
    details = _show_details(translator, given)
    prompt = translator.range(*given["PROMPT"])
    parameters = translator.range(*given["MODEL_PARAMETERS"]) if "MODEL_PARAMETERS" in given else "NULL"
    function = COMPLETE_DETAILS_FUNCTION if details else COMPLETE_FUNCTION
    return f"{function}(CAST({model} AS VARCHAR), CAST({prompt} AS VARCHAR), CAST({parameters} AS VARCHAR))"
