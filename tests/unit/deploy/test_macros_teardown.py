"""The teardown macro shows the SQL, and drops only when the database name is typed."""

from __future__ import annotations

import pytest
from macro_runner import dss_with, run_macro
from snowflake.snowpark.exceptions import SnowparkSQLException


@pytest.fixture
def dss(session, monkeypatch):
    yield from dss_with(session, monkeypatch)


def test_without_the_typed_name_it_shows_the_sql_and_opens_no_session(dss, session):
    run = run_macro("spcs-teardown", connection="snow")
    text = run.page.text
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in text and "DROP DATABASE" in text
    assert "Nothing was dropped" in text and "type SPCS_LLM" in text
    assert session.statements == [] and dss.connections_asked == []
    assert run.target == (3, "NONE") and run.progress[-1] == 3


def test_a_wrong_name_is_refused_with_the_fix(dss, session):
    page = run_macro("spcs-teardown", connection="snow", confirm_database="SPCS").page
    assert "Error: The confirmation 'SPCS' is not the database name SPCS_LLM; nothing was dropped." in page.text
    assert "Fix: Type SPCS_LLM exactly" in page.text
    assert session.statements == []


def test_the_typed_name_runs_it_through_the_dss_connection(dss, session):
    page = run_macro("spcs-teardown", connection="snow", confirm_database="spcs_llm", keep_models=True).page
    assert dss.connections_asked == ["snow"]
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in session.statements
    assert not any(s.startswith("DROP DATABASE") for s in session.statements)
    assert f"Dropped: {len(session.statements)} statement(s)" in page.text


def test_a_failing_statement_shows_what_ran_before_it_and_what_is_still_in_place(dss, session):
    def refuse(_match):
        raise SnowparkSQLException("003001 (42501): SQL access control error: Insufficient privileges.")

    session._handlers.insert(0, (r"^DROP WAREHOUSE ", refuse))
    page = run_macro("spcs-teardown", connection="snow", confirm_database="SPCS_LLM", keep_models=True).page
    text = page.text
    ran, rest = text.split("Ran before the failure: ", 1)[1].split("Not run (still in place): ", 1)
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in ran and "DROP WAREHOUSE" not in ran
    assert "DROP WAREHOUSE IF EXISTS SPCS_LLM_WH" in rest
    assert "Error: Teardown stopped: DROP WAREHOUSE IF EXISTS SPCS_LLM_WH failed" in text
    assert "Insufficient privileges" in text and "Fix: Fix the cause" in text and "IF EXISTS" in text


def test_no_connection_chosen_is_one_readable_error(dss, session):
    page = run_macro("spcs-teardown", confirm_database="SPCS_LLM").page
    assert "Error: No Snowflake connection chosen." in page.text and "Traceback" not in page.text
    assert session.statements == []
