"""Cortex fine-tuning library: checks before any call, the CREATE SQL (quoting, no injection), the estimate, and the
job followed to its end on the fake account (DESCRIBE progressions, the server's error, cancel)."""

from __future__ import annotations

import json

import fake_cortex_finetune
import pytest
from fake_cortex_finetune import error_step, finetune_state
from fake_tables import add_table

from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.deploy.cortex_finetune.job import (
    PollSettings,
    cancel_job,
    connection_settings_text,
    create_job,
    wait_for_job,
)
from spcs_llm.deploy.cortex_finetune.plan import FinetuneEstimate, FinetuneRequest, plan_finetune, validate
from spcs_llm.deploy.names import DeploymentNames

assert fake_cortex_finetune  # its handlers answer the FINETUNE statements

EXAMPLES = [{"PROMPT": "2+2?", "COMPLETION": "4"}, {"PROMPT": "Capital of France?", "COMPLETION": "Paris"},
            {"PROMPT": None, "COMPLETION": "orphan"}]


def _request(**changes) -> FinetuneRequest:
    base = dict(name="SUPPORT_TUNED", base_model="llama3.1-8b", training_table="TRAIN")
    return FinetuneRequest(**{**base, **changes})


@pytest.fixture
def train(account):
    return add_table(account, "SPCS_LLM.MODELS.TRAIN", ["PROMPT", "COMPLETION"], EXAMPLES)


def _no_wait() -> PollSettings:
    return PollSettings(interval_s=1.0, timeout_s=100.0, sleep=lambda _: None, clock=lambda: 0.0)


@pytest.mark.parametrize("changes, message, fix", [
    ({"name": "bad-name"}, "is not accepted", "letters, digits and _"),
    ({"name": "1ST"}, "is not accepted", "starting with a letter"),
    ({"base_model": "claude-3-5-sonnet"}, "cannot be fine-tuned", "--base-model"),
    ({"max_epochs": 0}, "--max-epochs must be 1 to 10", "between 1 and 10"),
    ({"max_epochs": 11}, "--max-epochs must be 1 to 10", "between 1 and 10"),
    ({"completion_column": 'X" FROM T; DROP TABLE T; --'}, "not a column name", "unquoted column names"),
    ({"prompt_columns": ("A", "B'C")}, "not a column name", "unquoted column names"),
    ({"training_credits_per_million": 0.0}, "above 0", "Service Consumption Table"),
])
def test_bad_settings_are_refused_with_a_fix_before_any_statement(session, changes, message, fix):
    with pytest.raises(ConfigurationError) as caught:
        plan_finetune(session, DeploymentNames(), _request(**changes))
    assert message in str(caught.value) and fix in caught.value.fix
    assert session.statements == []


def test_an_unlisted_base_model_passes_only_when_allowed():
    validate(_request(base_model="llama4-8b", allow_unlisted_base_model=True))
    with pytest.raises(ConfigurationError, match="as of 2026-12-04"):
        validate(_request(base_model="llama4-8b"))


def test_a_table_name_with_sql_in_it_is_refused_before_any_statement(session):
    with pytest.raises(ConfigurationError, match="not a table name") as caught:
        plan_finetune(session, DeploymentNames(), _request(training_table="TRAIN; DROP TABLE X"))
    assert "DATABASE.SCHEMA.TABLE" in caught.value.fix and session.statements == []


def test_create_sql_quotes_columns_as_snowflake_spells_them_and_leaves_out_incomplete_rows(session, account):
    add_table(account, "SPCS_LLM.MODELS.TRAIN", ["Prompt", "COMPLETION"], [{"Prompt": "a", "COMPLETION": "b"}])
    plan = plan_finetune(session, DeploymentNames(), _request(prompt_columns=("prompt",), max_epochs=3))

    assert plan.create_sql() == (
        "SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'SUPPORT_TUNED', 'llama3.1-8b', "
        "'SELECT \"Prompt\" AS prompt, \"COMPLETION\" AS completion FROM SPCS_LLM.MODELS.TRAIN "
        "WHERE \"Prompt\" IS NOT NULL AND \"COMPLETION\" IS NOT NULL', NULL, '{\"max_epochs\": 3}')")
    assert session.statements[0] == "SHOW COLUMNS IN TABLE SPCS_LLM.MODELS.TRAIN"


def test_the_model_name_is_an_identifier_and_the_schema_is_set_first_as_the_create_page_documents(session, train):
    # FINETUNE ('CREATE'): 'name' is "the identifier of the fine-tuned model" (letters, digits, _) and the model is
    # "saved to the model registry of the schema" (https://docs.snowflake.com/en/sql-reference/functions/finetune-create)
    job_id = create_job(session, plan_finetune(session, DeploymentNames(database="SALES", schema="TUNED"),
                                               _request(training_table="SPCS_LLM.MODELS.TRAIN")))

    use, create = [s for s in session.statements if s.startswith(("USE SCHEMA", "SELECT SNOWFLAKE.CORTEX"))]
    assert use == "USE SCHEMA SALES.TUNED"
    assert create.startswith("SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'SUPPORT_TUNED', 'llama3.1-8b', 'SELECT ")
    assert create.endswith("IS NOT NULL')")  # no validation query, no options: both left out, not NULL
    status = wait_for_job(session, job_id, _no_wait(), lambda _: None)
    assert status.model == "SALES.TUNED.SUPPORT_TUNED"


def test_max_epochs_travel_as_the_json_string_the_create_page_documents(session, train):
    plan = plan_finetune(session, DeploymentNames(), _request(validation_table="TRAIN", max_epochs=4))
    job_id = create_job(session, plan)

    assert plan.create_sql().endswith(""" IS NOT NULL', '{"max_epochs": 4}')""")
    assert "OBJECT_CONSTRUCT" not in plan.create_sql()
    assert finetune_state(session.account).jobs[job_id].options == {"max_epochs": 4}


def test_a_bare_model_name_from_describe_is_qualified_with_the_jobs_schema(session, train):
    finetune_state(session.account).plain_model_names = True  # as the DESCRIBE page's example answers
    job_id = create_job(session, plan_finetune(session, DeploymentNames(), _request()))

    status = wait_for_job(session, job_id, _no_wait(), lambda _: None)
    assert status.model == "SPCS_LLM.MODELS.SUPPORT_TUNED"


def test_instruction_and_input_are_joined_into_the_prompt_with_sql(session, account):
    add_table(account, "SPCS_LLM.MODELS.ALPACA", ["INSTRUCTION", "INPUT", "OUTPUT"],
              [{"INSTRUCTION": "Translate", "INPUT": "chat", "OUTPUT": "cat"},
               {"INSTRUCTION": "Say hi", "INPUT": "", "OUTPUT": "hi"}])
    plan = plan_finetune(session, DeploymentNames(), _request(training_table="ALPACA",
                                                              prompt_columns=("INSTRUCTION", "INPUT"),
                                                              completion_column="OUTPUT"))
    sql = plan.create_sql()
    assert ("ARRAY_TO_STRING(ARRAY_CONSTRUCT_COMPACT(NULLIF(TRIM(\"INSTRUCTION\"), \\'\\'), "
            "NULLIF(TRIM(\"INPUT\"), \\'\\')), CHR(10) || CHR(10)) AS prompt") in sql
    # "Translate\n\nchat" + "cat" and "Say hi" + "hi": the empty input adds nothing
    assert plan.training.characters == len("Translate\n\nchat") + 3 + len("Say hi") + 2


def test_a_missing_column_names_the_columns_there_are(session, train):
    with pytest.raises(ConfigurationError, match="has no column 'ANSWER'") as caught:
        plan_finetune(session, DeploymentNames(), _request(completion_column="ANSWER"))
    assert "PROMPT, COMPLETION" in str(caught.value) and "--completion-column" in caught.value.fix


def test_a_missing_table_surfaces_the_server_message_and_the_grant(session):
    with pytest.raises(DeploymentError, match="does not exist or not authorized") as caught:
        plan_finetune(session, DeploymentNames(), _request(training_table="NOPE"))
    assert "GRANT SELECT ON TABLE SPCS_LLM.MODELS.NOPE" in caught.value.fix


def test_a_table_without_examples_is_refused(session, account):
    add_table(account, "SPCS_LLM.MODELS.TRAIN", ["PROMPT", "COMPLETION"], [{"PROMPT": "x", "COMPLETION": None}])
    with pytest.raises(ConfigurationError, match="no row with both a prompt and a completion"):
        plan_finetune(session, DeploymentNames(), _request())


def test_estimate_is_tokens_times_epochs_times_rate_and_never_zero_when_unknown(session, train):
    plan = plan_finetune(session, DeploymentNames(), _request(max_epochs=2, training_credits_per_million=1.0))
    characters = len("2+2?4") + len("Capital of France?Paris")
    assert (plan.training.rows, plan.training.incomplete_rows, plan.training.characters) == (3, 1, characters)
    assert plan.estimate.tokens_per_epoch == -(-characters // 4)
    assert plan.estimate.credits == pytest.approx(plan.estimate.tokens_per_epoch * 2 / 1_000_000)

    unknown = FinetuneEstimate(tokens_per_epoch=1000, epochs=3, credits_per_million=None, dollars_per_credit=3.0)
    assert unknown.credits is None and "training cost unknown" in unknown.text() and "0.0000" not in unknown.text()
    unbounded = FinetuneEstimate(tokens_per_epoch=1_000_000, epochs=None, credits_per_million=2.0,
                                 dollars_per_credit=3.0)
    assert "2.0000 credits per epoch" in unbounded.text() and "maximum epochs" in unbounded.text()


def test_a_job_is_followed_to_success_with_a_line_per_change(session, train):
    plan = plan_finetune(session, DeploymentNames(), _request(validation_table="TRAIN"))
    job_id = create_job(session, plan)
    lines: list[str] = []

    status = wait_for_job(session, job_id, _no_wait(), lines.append)

    assert status.status == "SUCCESS" and status.model == "SPCS_LLM.MODELS.SUPPORT_TUNED"
    assert lines == [f"{job_id}: PENDING", f"{job_id}: IN_PROGRESS, 50%, 1,200 tokens trained",
                     f"{job_id}: SUCCESS, 100%, 2,400 tokens trained"]
    job = finetune_state(session.account).jobs[job_id]
    assert job.validation_query is not None and job.validation_query.endswith("FROM SPCS_LLM.MODELS.TRAIN "
                                                                              "WHERE \"PROMPT\" IS NOT NULL AND "
                                                                              "\"COMPLETION\" IS NOT NULL")


def test_a_failed_job_surfaces_the_server_message_and_a_fix(session, train):
    finetune_state(session.account).next_script = error_step("Prompt and completion exceed the context window.")
    job_id = create_job(session, plan_finetune(session, DeploymentNames(), _request()))
    with pytest.raises(DeploymentError, match="failed: Prompt and completion exceed the context window") as caught:
        wait_for_job(session, job_id, _no_wait(), lambda _: None)
    assert "Shorten" in caught.value.fix


def test_a_refused_create_carries_the_server_message_and_the_grants(session, train):
    finetune_state(session.account).create_error = ("003001 (42501): SQL access control error: Insufficient "
                                                    "privileges to operate on schema 'MODELS'")
    with pytest.raises(DeploymentError, match="Insufficient privileges") as caught:
        create_job(session, plan_finetune(session, DeploymentNames(), _request()))
    assert "CREATE MODEL on schema SPCS_LLM.MODELS" in caught.value.fix and "CORTEX_USER" in caught.value.fix


def test_timeout_leaves_the_job_running_and_says_how_to_follow_it(session, train):
    finetune_state(session.account).next_script = [{"status": "IN_PROGRESS", "progress": 0.2}]
    job_id = create_job(session, plan_finetune(session, DeploymentNames(), _request()))
    ticks = iter(range(0, 1000, 60))
    settings = PollSettings(interval_s=60, timeout_s=100, sleep=lambda _: None, clock=lambda: float(next(ticks)))
    with pytest.raises(DeploymentError, match="still IN_PROGRESS") as caught:
        wait_for_job(session, job_id, settings, lambda _: None)
    assert f"--attach {job_id}" in caught.value.fix and f"--cancel {job_id}" in caught.value.fix


def test_cancel_then_describe_reports_cancelled(session, train):
    job_id = create_job(session, plan_finetune(session, DeploymentNames(), _request()))
    assert cancel_job(session, job_id) == f"Canceled Cortex Fine-tuning job: {job_id}"
    with pytest.raises(DeploymentError, match="was cancelled; no model was made"):
        wait_for_job(session, job_id, _no_wait(), lambda _: None)
    assert session.statements[-2] == f"SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL', '{job_id}')"


def test_describe_of_an_unknown_job_is_an_error(session):
    with pytest.raises(DeploymentError, match="FINETUNE\\('DESCRIBE'\\) of job .* failed: .*not found") as caught:
        wait_for_job(session, "CortexFineTuningWorkflow_9999", _no_wait(), lambda _: None)
    assert "FINETUNE('SHOW')" in caught.value.fix


def test_connection_settings_name_the_cortex_chat_fields():
    text = connection_settings_text("SPCS_LLM.MODELS.SUPPORT_TUNED", "llama3.1-8b",
                                    "https://org-acct.snowflakecomputing.com")
    fields = json.load(open("python-llms/cortex-chat/llm.json"))["params"]
    names = {field.get("name") for field in fields}
    for name in ("account_url", "model", "tool_calling"):
        assert name in names and f"({name})" in text
    assert "Model (model): SPCS_LLM.MODELS.SUPPORT_TUNED" in text
    assert "https://org-acct.snowflakecomputing.com" in text
    assert "Input / Output credits per million tokens: 0.03 / 0.03" in text
    unknown = connection_settings_text("DB.S.M", "mixtral-8x7b-new", None)
    assert "cost shows as unknown" in unknown and "0 /" not in unknown


def test_the_fakes_job_answers_parse_in_snowflake_mls_own_finetune_job(session, train):
    """snowflake-ml 2.6 snowflake/cortex/_finetune.py FinetuneJob.describe / cancel, run unchanged on the fake."""
    from snowflake.cortex import FinetuneJob, FinetuneStatus

    job_id = create_job(session, plan_finetune(session, DeploymentNames(), _request()))
    job = FinetuneJob(session, FinetuneStatus(id=job_id))
    described = job.describe()
    assert (described.id, described.status, described.base_model) == (job_id, "PENDING", "llama3.1-8b")
    assert job.cancel() is True
    assert session.statements[-1] == f"SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL','{job_id}')"
