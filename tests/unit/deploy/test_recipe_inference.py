"""The "LLM inference in Snowflake" Flow recipe, run as DSS runs it (its recipe.py, top to bottom) against fakes of
``dataiku.customrecipe`` / ``dataiku.Dataset`` / ``DkuSnowpark`` and the recording fake Snowpark session: every
input row ends with a reply or its own ERROR, the estimate is logged first, and prompt text is bound, never SQL."""

from __future__ import annotations

import runpy
from pathlib import Path

import fake_batch
import fake_cortex_sql  # noqa: F401 - registers the recipe's statements with the fake session
import pytest
from fake_cortex_sql import cortex_state
from fake_tables import add_table, find_table

import dataiku_fakes
from dataiku_recipe_fakes import FakeDataset, install_recipe
from spcs_llm.core.errors import ConfigurationError

RECIPE = Path(__file__).resolve().parents[3] / "custom-recipes" / "spcs-llm-inference" / "recipe.py"
TEXTS = ["great phone", "battery died in a day", "it's fine", "would buy again"]
INJECTION = "Summarise: {{review}} '); DROP TABLE x; -- \"quoted\" \\ back\\slash ''"


@pytest.fixture
def world(session, account):
    fake_batch.attach_job_connection(session)
    add_table(account, 'SPCS_LLM.MODELS."PROJ_reviews"', {"ID": "NUMBER", "review": "VARCHAR"},
              [{"ID": i, "review": text} for i, text in enumerate(TEXTS)])
    world = install_recipe()
    dataiku_fakes.install_snowpark(lambda _name: session)
    world.add(FakeDataset("reviews", "snowflake-prod", "SPCS_LLM", "MODELS", "PROJ_reviews",
                          [{"name": "ID", "type": "bigint"}, {"name": "review", "type": "string"}]), input_role="input")
    world.add(FakeDataset("reviews_scored", "snowflake-prod", "SPCS_LLM", "MODELS", "PROJ_reviews_scored"),
              output_role="output")
    world.config = {"model_kind": "cortex", "cortex_model": "llama3.1-8b", "task": "chat", "input_mode": "template",
                    "prompt_template": "Summarise: {{review}}", "max_tokens": 100}
    yield world
    dataiku_fakes.uninstall()


def _run() -> None:
    runpy.run_path(str(RECIPE), run_name="__main__")


def _output(account) -> list[dict]:
    return find_table(account, 'SPCS_LLM.MODELS."PROJ_reviews_scored"').rows


def _model_statements(session) -> list[str]:
    """The statements that call the model on rows (the zero-row model check, a SELECT, is not one)."""
    return [s for s in session.statements if ("AI_COMPLETE(" in s or "AI_EMBED(" in s or "!__CALL__(" in s)
            and not s.startswith("SELECT")]


def test_a_prompt_template_runs_on_cortex_inside_snowflake_and_every_row_gets_its_reply(world, session, account,
                                                                                         capsys):
    _run()

    rows = _output(account)
    assert [r["REPLY"] for r in rows] == [f"cortex answer to: Summarise: {t}" for t in TEXTS]
    assert [r["review"] for r in rows] == TEXTS and [r["ID"] for r in rows] == [0, 1, 2, 3]
    assert [r["PROMPT_TOKENS"] for r in rows] == [len(f"Summarise: {t}".split()) for t in TEXTS]
    assert all(r["COMPLETION_TOKENS"] == 4 and r["ERROR"] is None for r in rows)
    # llama3.1-8b: 0.03 credits per million tokens in and out (cortex/cost.py), bound, computed in Snowflake
    assert rows[0]["COST_CREDITS"] == pytest.approx((3 * 0.03 + 4 * 0.03) / 1e6)
    [call] = cortex_state(account).calls
    assert call == {"model": "llama3.1-8b", "task": "chat", "options": {"max_tokens": 100}, "rows": (1, 4)}
    log = capsys.readouterr().out
    estimate = log.index("Estimate (not a quote): 4 rows")
    assert estimate < log.index("4/4 rows scored by Cortex llama3.1-8b")
    assert "at most 400 reply tokens on Cortex llama3.1-8b" in log
    assert world.datasets["reviews_scored"].written_schema == [
        {"name": "ID", "type": "bigint"}, {"name": "review", "type": "string"}, {"name": "PROMPT", "type": "string"},
        {"name": "REPLY", "type": "string"}, {"name": "PROMPT_TOKENS", "type": "bigint"},
        {"name": "COMPLETION_TOKENS", "type": "bigint"}, {"name": "COST_CREDITS", "type": "double"},
        {"name": "ERROR", "type": "string"}]


def test_prompt_text_is_bound_never_spliced_into_sql(world, session, account):
    world.config["prompt_template"] = INJECTION

    _run()

    for statement in session.statements:
        assert "DROP TABLE" not in statement and "Summarise" not in statement and "\\" not in statement
        assert "quoted" not in statement and "''" not in statement.replace("COALESCE(\"review\"::VARCHAR, '')", "")
    [(fill, params)] = [(s, p) for s, p in session.bound if s.startswith("INSERT INTO") and "SEQ8()" in s]
    assert params == ["Summarise: ", " '); DROP TABLE x; -- \"quoted\" \\ back\\slash ''"]
    assert fill.endswith("SELECT ROW_NUMBER() OVER (ORDER BY SEQ8()), \"ID\", \"review\", "
                         "CONCAT(?, COALESCE(\"review\"::VARCHAR, ''), ?) FROM "
                         "\"SPCS_LLM\".\"MODELS\".\"PROJ_reviews\"")
    assert all(not p for s, p in session.bound if s.startswith("CREATE"))  # no bind variable in DDL
    assert [r["PROMPT"] for r in _output(account)] == [
        f"Summarise: {t} '); DROP TABLE x; -- \"quoted\" \\ back\\slash ''" for t in TEXTS]
    assert all(r["ERROR"] is None for r in _output(account))


def test_a_failing_row_gets_its_own_error_and_the_others_their_replies(world, session, account):
    cortex_state(account).failing_prompts.add(f"Summarise: {TEXTS[2]}")
    world.config["chunk_rows"] = 4

    _run()

    rows = _output(account)
    assert len(rows) == 4 and rows[2]["REPLY"] is None and "the prompt was rejected" in rows[2]["ERROR"]
    assert all(r["ERROR"] is None and r["REPLY"] for i, r in enumerate(rows) if i != 2)
    assert [c["rows"] for c in cortex_state(account).calls] == [(1, 2), (4, 4)]  # 1-4 and 3-4 failed, then 3 alone


def test_a_model_cortex_refuses_stops_the_run_once_before_any_row_is_scored(world, session, account):
    world.config.update(cortex_model="llama-9000", input_credits_per_million=0.1)

    with pytest.raises(ConfigurationError) as refused:
        _run()

    assert "Cortex refused the call to llama-9000 before any row was scored" in refused.value.message
    assert "Model 'llama-9000' is unavailable" in refused.value.message and "'Cortex model'" in refused.value.fix
    assert not cortex_state(account).calls
    assert not _model_statements(session)  # one zero-row check, no statement per row
    assert len([s for s in session.statements if s.startswith("SELECT AI_COMPLETE(")]) == 1
    assert find_table(account, 'SPCS_LLM.MODELS."PROJ_reviews_scored"') is None


def test_an_embedding_model_writes_a_vector_per_row_from_a_text_column(world, session, account):
    world.config.update(cortex_model="snowflake-arctic-embed-m-v1.5", task="embedding", input_mode="column",
                        text_column="review", max_tokens=None)

    _run()

    assert [r["EMBEDDING"] for r in _output(account)] == [[float(len(t)), 0.25, -0.25] for t in TEXTS]
    [statement] = _model_statements(session)
    assert "TO_VARIANT(AI_EMBED(?, \"PROMPT\")::ARRAY)" in statement


def test_mismatched_connections_are_refused_before_any_session(world, session):
    world.datasets["reviews_scored"].connection = "snowflake-other"

    with pytest.raises(ConfigurationError, match="on connection 'snowflake-prod' and the output") as raised:
        _run()
    assert "Store the output dataset on connection 'snowflake-prod'" in raised.value.fix
    assert dataiku_fakes.SnowparkHelper.connections_asked == [] and session.statements == []


def test_a_dataset_outside_snowflake_is_refused(world, session):
    world.datasets["reviews"].database_type = "PostgreSQL"
    with pytest.raises(ConfigurationError, match="is not stored in Snowflake") as raised:
        _run()
    assert "Sync recipe" in raised.value.fix and session.statements == []


def test_an_unknown_template_column_is_refused_before_anything_is_written(world, session):
    world.config["prompt_template"] = "Summarise: {{reviews}} for {{ID}}"
    with pytest.raises(ConfigurationError, match=r"has no column 'reviews' \(its columns: ID, review\)"):
        _run()
    assert [s.split()[0] for s in session.statements] == ["SHOW"]


def test_above_the_max_cost_nothing_is_scored(world, session, account, capsys):
    world.config.update(cortex_model="claude-3-5-sonnet", max_tokens=4000, max_cost_credits=0.01)

    with pytest.raises(ConfigurationError, match="Not started: the estimate goes up to 0.1200 credits") as raised:
        _run()
    assert "Max cost" in raised.value.fix
    assert "Estimate (not a quote): 4 rows" in capsys.readouterr().out
    assert not _model_statements(session)


def test_an_unknown_price_with_a_max_cost_is_refused(world, session):
    world.config.update(cortex_model="my-finetuned-model", max_cost_credits=5)
    with pytest.raises(ConfigurationError, match="cannot be checked against the maximum"):
        _run()
    assert not _model_statements(session)


def test_a_deployed_spcs_model_scores_through_its_service_function(world, session, account, capsys):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    world.config = {"model_kind": "spcs", "spcs_model": "zephyr-7b-beta", "input_mode": "template",
                    "prompt_template": "Summarise: {{review}}", "max_tokens": 50}

    _run()

    rows = _output(account)
    assert [r["REPLY"] for r in rows] == [f"answer to: Summarise: {t}" for t in TEXTS]
    assert [r["PROMPT_TOKENS"] for r in rows] == [len(f"Summarise: {t}".split()) for t in TEXTS]
    assert all(r["ERROR"] is None for r in rows) and "COST_CREDITS" not in rows[0]
    [call] = _model_statements(session)
    assert "SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC!__CALL__(" in call and "Summarise" not in call
    assert call.endswith("FROM SPCS_LLM.MODELS.SPCS_LLM_RECIPE_PROMPTS_" + call.rsplit("_PROMPTS_", 1)[1])
    log = capsys.readouterr().out
    assert log.index("Estimate (not a quote): 4 rows") < log.index("4/4 rows scored")
    assert "bills these hours anyway" in log


def test_a_spcs_row_the_service_fails_on_has_its_error(world, session, account):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    fake_batch.batch_state(account).failing_texts.add(f"Summarise: {TEXTS[1]}")
    world.config = {"model_kind": "spcs", "spcs_model": "zephyr-7b-beta", "input_mode": "template",
                    "prompt_template": "Summarise: {{review}}"}

    _run()

    rows = _output(account)
    assert rows[1]["REPLY"] is None and "Request failed for external function __CALL__" in rows[1]["ERROR"]
    assert sum(r["ERROR"] is None for r in rows) == 3


def test_a_large_table_runs_as_a_batch_job_and_keeps_the_row_order(world, session, account, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _seconds: None)  # the job is polled every 30 s
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    world.config = {"model_kind": "spcs", "spcs_model": "zephyr-7b-beta", "input_mode": "column",
                    "text_column": "review", "spcs_mode": "job", "replicas": 2}

    _run()

    [job] = fake_batch.batch_state(account).jobs.values()
    assert (job.function, job.replicas) == ("__call__", 2)
    assert [r["REPLY"] for r in _output(account)] == [f"answer to: {t}" for t in TEXTS]
    assert [r["ID"] for r in _output(account)] == [0, 1, 2, 3]


def test_a_spcs_estimate_above_the_max_cost_starts_nothing(world, session, account, capsys):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    world.config = {"model_kind": "spcs", "spcs_model": "zephyr-7b-beta", "input_mode": "column",
                    "text_column": "review", "spcs_mode": "job", "max_cost_credits": 0.001}

    with pytest.raises(ConfigurationError, match="Not started: the estimate goes up to"):
        _run()
    assert "Estimate (not a quote): 4 rows" in capsys.readouterr().out
    assert not fake_batch.batch_state(account).jobs and not _model_statements(session)


def test_an_empty_table_writes_an_empty_output(world, session, account):
    find_table(account, 'SPCS_LLM.MODELS."PROJ_reviews"').rows.clear()

    _run()

    assert _output(account) == [] and not cortex_state(account).calls


def test_a_pool_too_small_for_the_model_is_refused_naming_the_recipe_setting(world, session, account):
    account.add_service("ZEPHYR_7B_BETA", "V1", "ZEPHYR_7B_BETA_SVC", ["RUNNING"])
    world.config = {"model_kind": "spcs", "spcs_model": "zephyr-7b-beta", "input_mode": "column",
                    "text_column": "review", "spcs_mode": "job", "compute_pool": "SPCS_LLM_CPU_POOL"}

    with pytest.raises(Exception, match="has no GPU") as raised:
        _run()
    assert "Pass 'Compute pool' with a pool of GPU_NV_S or larger" in raised.value.fix
    assert not _model_statements(session)


def test_a_row_the_function_answers_with_null_says_so_in_its_error(world, session, account):
    cortex_state(account).unanswered_prompts.add(f"Summarise: {TEXTS[0]}")

    _run()

    first, *others = _output(account)
    assert first["REPLY"] is None and first["ERROR"] == "the model returned no answer for this row"
    assert first["COST_CREDITS"] is None and all(r["ERROR"] is None for r in others)


@pytest.mark.parametrize(("config", "error", "fix"), [
    ({"text_column": ""}, "No text column is chosen", "Choose the column"),
    ({"input_mode": "template", "prompt_template": "Summarise everything"}, "names no column", "{{review}}"),
    ({"cortex_model": ""}, "No Cortex model is named", "llama3.1-8b"),
    ({"task": "embedding", "cortex_model": "snowflake-arctic-embed-m-v1.5", "max_tokens": 10},
     "apply to chat models only", "Clear them"),
    ({"max_tokens": "many"}, "max_tokens must be a number", "Correct 'max_tokens'"),
    ({"model_kind": "spcs"}, "No deployed model is named", "spcs-llm deploy"),
])
def test_bad_settings_are_refused_before_any_sql(world, session, config, error, fix):
    world.config = {"model_kind": "cortex", "cortex_model": "llama3.1-8b", "input_mode": "column",
                    "text_column": "review", **config}
    with pytest.raises(ConfigurationError, match=error) as raised:
        _run()
    assert fix in raised.value.fix and session.statements == []
