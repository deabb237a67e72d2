"""The "LLM inference in Snowflake" Flow recipe end to end, as DSS runs it (its recipe.py, top to bottom, with the
``dataiku`` fakes), on the stand-in warehouse: DuckDB behind a Snowpark-like session, AI_COMPLETE / AI_EMBED
answered by the stand-in's real tiny Cortex models. The tiny models' replies are not asserted as text, only their
properties: every input row is in the output, with a reply and token counts or its own ERROR, and cost = tokens ×
rates."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

import dataiku_fakes
from dataiku_recipe_fakes import FakeDataset, install_recipe
from spcs_standin.cortex_engines import CHAT_MODEL, EMBED_MODEL
from spcs_standin.warehouse import Warehouse

RECIPE = Path(__file__).resolve().parents[2] / "custom-recipes" / "spcs-llm-inference" / "recipe.py"
REVIEWS = ["Great phone, the battery lasts two days.", "Stopped working after a week.", None,
           "Fast delivery, well packed.", "too long " * 1500, "Would buy again."]
TOO_LONG = 4  # over the tiny model's 2,048-token context: that row fails on its own
INJECTION = " '); DROP TABLE x; -- \"quoted\" \\ back\\slash ''"
RATES = (0.5, 1.5)  # credits per million input / output tokens, as a user sets them for a model the table lacks


@pytest.fixture(scope="module")
def warehouse():
    return Warehouse(database="SPCS_LLM", schema="MODELS")


@pytest.fixture
def session(warehouse):
    session = warehouse.session()
    session.sql('CREATE OR REPLACE TABLE "PROJ_reviews" (ID NUMBER, "review" VARCHAR)').collect()
    for number, review in enumerate(REVIEWS, start=1):
        session.sql('INSERT INTO "PROJ_reviews" (ID, "review") VALUES (?, ?)', params=[number, review]).collect()
    session.sql("CREATE OR REPLACE TABLE X (A NUMBER)").collect()  # what the injected DROP TABLE x would drop
    yield session
    session.close()


@pytest.fixture
def world(session):
    world = install_recipe()
    dataiku_fakes.install_snowpark(lambda _name: session)
    world.add(FakeDataset("reviews", "snowflake", "SPCS_LLM", "MODELS", "PROJ_reviews",
                          [{"name": "ID", "type": "bigint"}, {"name": "review", "type": "string"}]), input_role="input")
    world.add(FakeDataset("reviews_scored", "snowflake", "SPCS_LLM", "MODELS", "PROJ_reviews_scored"),
              output_role="output")
    world.config = {"model_kind": "cortex", "cortex_model": CHAT_MODEL, "task": "chat", "input_mode": "template",
                    "prompt_template": "Summarise: {{review}}" + INJECTION, "max_tokens": 12,
                    "input_credits_per_million": RATES[0], "output_credits_per_million": RATES[1]}
    yield world
    dataiku_fakes.uninstall()


def _output(session) -> list[dict]:
    return [row.as_dict() for row in session.sql('SELECT * FROM "PROJ_reviews_scored" ORDER BY ID').collect()]


def test_the_recipe_scores_every_row_inside_the_warehouse_and_the_long_row_gets_its_own_error(world, session,
                                                                                               capsys):
    runpy.run_path(str(RECIPE), run_name="__main__")

    rows = _output(session)
    assert [r["ID"] for r in rows] == list(range(1, len(REVIEWS) + 1))
    assert [r["review"] for r in rows] == REVIEWS
    failed = rows[TOO_LONG]
    assert failed["REPLY"] is None and failed["PROMPT_TOKENS"] is None
    assert "takes at most 2048" in failed["ERROR"] and CHAT_MODEL in failed["ERROR"]
    for row in rows[:TOO_LONG] + rows[TOO_LONG + 1:]:
        assert row["ERROR"] is None and row["REPLY"].strip()
        assert row["PROMPT_TOKENS"] > 0 and 0 < row["COMPLETION_TOKENS"] <= 12
        cost = (row["PROMPT_TOKENS"] * RATES[0] + row["COMPLETION_TOKENS"] * RATES[1]) / 1e6
        assert row["COST_CREDITS"] == pytest.approx(cost)
    log = capsys.readouterr().out
    assert log.index(f"Estimate (not a quote): {len(REVIEWS)} rows") < log.index("rows scored by Cortex")
    assert f"{len(REVIEWS)} rows written to" in log and "1 with an ERROR" in log
    assert [c["name"] for c in world.datasets["reviews_scored"].written_schema] == [
        "ID", "review", "PROMPT", "REPLY", "PROMPT_TOKENS", "COMPLETION_TOKENS", "COST_CREDITS", "ERROR"]


def test_the_recipe_leaves_only_its_output_table_once_the_session_ends(world, session, warehouse):
    def scratch() -> list[str]:
        return [key[2] for key in warehouse.table_keys() if key[2].startswith("SPCS_LLM_RECIPE_")]

    runpy.run_path(str(RECIPE), run_name="__main__")
    assert len(scratch()) == 2  # the prompts and the scored rows, both temporary
    session.close()
    assert scratch() == []
    assert ("SPCS_LLM", "MODELS", "PROJ_reviews_scored") in warehouse.table_keys()


def test_prompt_text_with_an_injection_attempt_is_stored_as_text_and_drops_nothing(world, session, warehouse):
    before = set(warehouse.table_keys())
    first = len(warehouse.statements)

    runpy.run_path(str(RECIPE), run_name="__main__")

    rows = _output(session)
    assert rows[0]["PROMPT"] == f"Summarise: {REVIEWS[0]}{INJECTION}"
    assert rows[2]["PROMPT"] == f"Summarise: {INJECTION}"  # a NULL value counts as empty text
    assert before <= set(warehouse.table_keys()) and ("SPCS_LLM", "MODELS", "X") in before
    for statement, params in warehouse.statements[first:]:
        assert "DROP" not in statement and "Summarise" not in statement and "back" not in statement
        if statement.startswith("CREATE"):
            assert params == []  # no bind variable in DDL (the warehouse refuses them, as Snowflake does)


def test_an_embedding_model_writes_a_vector_per_row(world, session):
    world.config = {"model_kind": "cortex", "cortex_model": EMBED_MODEL, "task": "embedding", "input_mode": "column",
                    "text_column": "review", "input_credits_per_million": RATES[0]}
    session.sql('CREATE OR REPLACE TABLE "PROJ_reviews" AS SELECT ID, "review" FROM "PROJ_reviews" WHERE ID <= 3'
                ).collect()

    runpy.run_path(str(RECIPE), run_name="__main__")

    rows = _output(session)
    assert [r["ID"] for r in rows] == [1, 2, 3] and all(r["ERROR"] is None for r in rows)
    vectors = [json.loads(r["EMBEDDING"]) for r in rows]
    assert all(len(v) == 384 and all(isinstance(x, float) for x in v) for v in vectors)
    assert vectors[0] != vectors[1]


def test_a_model_the_warehouse_does_not_know_stops_the_run_before_any_row(world, session):
    from spcs_llm.core.errors import ConfigurationError

    world.config["cortex_model"] = "no-such-model"
    with pytest.raises(ConfigurationError, match="Cortex refused the call to no-such-model before any row"):
        runpy.run_path(str(RECIPE), run_name="__main__")
    [scored] = [key[2] for key in session.warehouse.table_keys() if key[2].startswith("SPCS_LLM_RECIPE_SCORED_")]
    assert session.sql(f"SELECT COUNT(*) AS N FROM SPCS_LLM.MODELS.{scored}").collect()[0]["N"] == 0
