"""AI_COMPLETE and AI_EMBED in the stand-in warehouse, on fake engines (the real tiny models run in
tests/integration/test_recipe_in_warehouse.py): arguments positional or named, the details object's shape, and the
refusals — an unknown model, bad parameters, a prompt over the context — each failing its whole statement."""

from __future__ import annotations

import json
import threading

import pytest
from snowflake.snowpark.exceptions import SnowparkSQLException

from spcs_standin.cortex_engines import CHAT_MODEL, EMBED_MODEL, GenerationEnd
from spcs_standin.warehouse import Warehouse

CONTEXT = 12


class FakeChat:
    """One token per word; replies "echo: <last word>" in two tokens."""

    context_tokens = CONTEXT

    def __init__(self) -> None:
        self.asked: list[dict] = []

    def prompt_ids(self, messages, tools):
        assert tools is None and [m["role"] for m in messages] == ["user"]
        return list(range(len(messages[0]["content"].split()) + 1))

    def generate(self, prompt_ids, *, max_tokens, temperature, top_p, stop_strings, emit, cancelled):
        assert isinstance(cancelled, threading.Event)
        self.asked.append({"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p})
        emit("echo: ")
        emit(str(len(prompt_ids)))
        return GenerationEnd(min(2, max_tokens), "stop")


class FakeTokenizer:
    def __call__(self, text):
        return {"input_ids": text.split()}


class FakeEmbedModel:
    max_seq_length = 4
    tokenizer = FakeTokenizer()


class FakeEmbedder:
    model = FakeEmbedModel()

    def embed(self, texts):
        return [[float(len(t)), 0.5] for t in texts], sum(len(t.split()) for t in texts)


class FakeModels:
    def __init__(self) -> None:
        self.engine = FakeChat()

    def chat(self, name):
        assert name == CHAT_MODEL
        return self.engine

    def embedder(self):
        return FakeEmbedder()


@pytest.fixture
def models():
    return FakeModels()


@pytest.fixture
def session(models):
    session = Warehouse(database="DB", schema="SCH", models=models).session()
    session.sql("CREATE TABLE P (ROW_ID NUMBER, \"PROMPT\" VARCHAR)").collect()
    session.sql("INSERT INTO P (ROW_ID, \"PROMPT\") VALUES (1, 'one two'), (2, 'three'), (3, ?)",
                params=["a " * 20]).collect()
    session.sql("CREATE TABLE S (ROW_ID NUMBER, RESPONSE VARIANT, ERROR VARCHAR)").collect()
    return session


def _details_call(parameters: str = "") -> str:
    return f"AI_COMPLETE(model => ?, prompt => \"PROMPT\"{parameters}, show_details => TRUE)"


def test_show_details_gives_the_reply_and_usage_where_the_recipe_reads_them(session):
    session.sql(f"INSERT INTO S (ROW_ID, RESPONSE, ERROR) SELECT ROW_ID, {_details_call()}, NULL FROM P "
                "WHERE ROW_ID BETWEEN ? AND ?", params=[CHAT_MODEL, 1, 2]).collect()
    rows = session.sql("SELECT r.RESPONSE:choices[0]:messages::VARCHAR AS REPLY, "
                       "r.RESPONSE:usage:prompt_tokens::NUMBER AS P, r.RESPONSE:usage:completion_tokens::NUMBER AS C, "
                       "RESPONSE FROM S r ORDER BY ROW_ID").collect()
    assert [(r["REPLY"], r["P"], r["C"]) for r in rows] == [("echo: 3", 3, 2), ("echo: 2", 2, 2)]
    details = json.loads(rows[0]["RESPONSE"])
    assert details["model"] == CHAT_MODEL and details["usage"]["total_tokens"] == 5 and "created" in details


def test_without_details_the_reply_is_a_string_and_positional_arguments_work(session, models):
    [row] = session.sql("SELECT AI_COMPLETE(?, 'hi there', OBJECT_CONSTRUCT('temperature', ?, 'max_tokens', ?)) AS A",
                        params=[CHAT_MODEL, 0.5, 1]).collect()
    assert row["A"] == "echo: 3"
    assert models.engine.asked == [{"max_tokens": 1, "temperature": 0.5, "top_p": 1.0}]


def test_an_unknown_or_wrong_kind_model_fails_the_statement(session):
    for function, model in (("AI_COMPLETE", "no-such-model"), ("AI_COMPLETE", EMBED_MODEL), ("AI_EMBED", CHAT_MODEL)):
        with pytest.raises(SnowparkSQLException, match=f'{function}: unknown model "{model}"'):
            session.sql(f"SELECT {function}(?, 'x') AS A", params=[model]).collect()


def test_a_prompt_over_the_context_fails_its_whole_statement_and_nothing_is_inserted(session):
    with pytest.raises(SnowparkSQLException, match=f"the prompt has 21 tokens; {CHAT_MODEL} takes at most {CONTEXT}"):
        session.sql(f"INSERT INTO S (ROW_ID, RESPONSE, ERROR) SELECT ROW_ID, {_details_call()}, NULL FROM P",
                    params=[CHAT_MODEL]).collect()
    assert session.sql("SELECT COUNT(*) AS N FROM S").collect()[0]["N"] == 0


def test_the_reply_is_capped_to_what_is_left_of_the_context(session, models):
    session.sql("SELECT AI_COMPLETE(?, 'a b c d e f g h i j') AS A", params=[CHAT_MODEL]).collect()
    assert models.engine.asked[-1]["max_tokens"] == CONTEXT - 11


def test_model_parameters_are_checked_against_their_documented_ranges(session):
    cases = [("'temperature', 1.5", "temperature must be a number from 0 to 1"),
             ("'max_tokens', 9000", "max_tokens must be an integer from 1 to 8192"),
             ("'max_tokens', 0", "max_tokens must be an integer from 1 to 8192"),
             ("'top_k', 3", "unknown model parameter\\(s\\) top_k")]
    for parameters, reason in cases:
        with pytest.raises(SnowparkSQLException, match=reason):
            session.sql(f"SELECT AI_COMPLETE(?, 'x', OBJECT_CONSTRUCT({parameters})) AS A",
                        params=[CHAT_MODEL]).collect()


def test_a_null_parameter_counts_as_absent_as_object_construct_drops_it(session, models):
    session.sql("SELECT AI_COMPLETE(?, 'x', OBJECT_CONSTRUCT('max_tokens', ?)) AS A",
                params=[CHAT_MODEL, None]).collect()
    assert models.engine.asked[-1]["max_tokens"] == CONTEXT - 2  # the 4096 default, capped by the context


def test_call_shapes_outside_the_documented_signatures_are_refused(session):
    cases = {"AI_COMPLETE(model => ?, 'x')": "either positional or named",
             "AI_COMPLETE(model => ?, text => 'x')": "no argument named 'text'",
             "AI_COMPLETE(model => ?, prompt => 'x', model => 'y')": "given twice",
             "AI_COMPLETE(model => ?)": "needs the argument\\(s\\) prompt",
             "AI_COMPLETE(?, 'x', NULL, NULL, TRUE, 1)": "too many arguments",
             "AI_COMPLETE(model => ?, prompt => 'x', show_details => 1 = 1)": "constant TRUE or FALSE",
             "AI_COMPLETE(model => ?, prompt => 'x', response_format => OBJECT_CONSTRUCT('type', 'json'))":
                 "response_format"}
    for call, reason in cases.items():
        with pytest.raises(SnowparkSQLException, match=reason):
            session.sql(f"SELECT {call} AS A", params=[CHAT_MODEL]).collect()


def test_ai_embed_returns_a_vector_stored_as_an_array_in_a_variant(session):
    [row] = session.sql("SELECT TO_VARIANT(AI_EMBED(?, 'four words in here')::ARRAY) AS V",
                        params=[EMBED_MODEL]).collect()
    assert json.loads(row["V"]) == [18.0, 0.5]


def test_ai_embed_refuses_an_input_over_the_models_sequence_length(session):
    with pytest.raises(SnowparkSQLException, match="AI_EMBED: the input has 5 tokens; .* takes at most 4"):
        session.sql("SELECT AI_EMBED(model => ?, input => 'one two three four five') AS V",
                    params=[EMBED_MODEL]).collect()


def test_a_null_prompt_gives_null(session):
    assert session.sql("SELECT AI_COMPLETE(?, NULL) AS A", params=[CHAT_MODEL]).collect()[0]["A"] is None


def test_an_unknown_model_fails_the_statement_even_over_no_rows(session, models):
    for model in ("no-such-model", "'no-such-model'"):
        call = "AI_COMPLETE(?, \"PROMPT\")" if model.startswith("n") else f"AI_COMPLETE({model}, \"PROMPT\")"
        with pytest.raises(SnowparkSQLException, match='AI_COMPLETE: unknown model "no-such-model"'):
            session.sql(f"SELECT {call} AS A FROM P WHERE ROW_ID > 99",
                        params=[model] if model.startswith("n") else []).collect()
    assert models.engine.asked == []
