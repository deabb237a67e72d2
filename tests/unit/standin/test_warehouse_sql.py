"""The stand-in warehouse's SQL: Snowflake's syntax translated for DuckDB (identifier folding, VARIANT paths and
casts, CONCAT, SEQ8, OBJECT_CONSTRUCT, TO_VARIANT), and every refusal Snowflake makes (or the warehouse makes in its
place, being stricter) raised as Snowpark's SnowparkSQLException."""

from __future__ import annotations

import json

import pytest
from snowflake.snowpark import Row
from snowflake.snowpark.exceptions import SnowparkSQLException

from spcs_standin.warehouse import Warehouse


@pytest.fixture
def session():
    warehouse = Warehouse(database="DB", schema="SCH")
    session = warehouse.session()
    session.sql('CREATE TABLE "Reviews" (ID NUMBER, "review" VARCHAR, SCORE FLOAT, R VARIANT)').collect()
    session.sql('INSERT INTO "Reviews" (ID, "review", SCORE, R) SELECT ?, ?, ?, NULL',
                params=[1, "good", 0.5]).collect()
    session.sql('INSERT INTO "Reviews" (ID, "review") VALUES (?, ?), (?, ?)', params=[2, "it's bad", 3, None]).collect()
    return session


def _one(session, sql, params=None):
    return session.sql(sql, params=params).collect()


def test_rows_come_back_as_snowpark_rows_by_upper_case_name_with_snowflake_types(session):
    rows = _one(session, 'SELECT ID, "review", SCORE FROM "Reviews" ORDER BY ID')
    assert isinstance(rows[0], Row) and rows[0]["ID"] == 1 and isinstance(rows[0]["ID"], int)
    assert [r["review"] for r in rows] == ["good", "it's bad", None] and rows[0]["SCORE"] == 0.5
    assert session.get_current_database() == '"DB"' and session.get_current_schema() == '"SCH"'


def test_unquoted_identifiers_fold_to_upper_case_and_quoted_ones_keep_their_case(session):
    _one(session, "CREATE TABLE lower_case (name VARCHAR, \"Mixed\" VARCHAR)")
    columns = [r["column_name"] for r in _one(session, "SHOW COLUMNS IN TABLE DB.SCH.LOWER_CASE")]
    assert columns == ["NAME", "Mixed"]
    assert _one(session, "SELECT name AS n FROM Lower_Case") == []


def test_show_columns_lists_the_columns_in_order_with_snowflake_column_names(session):
    rows = _one(session, 'SHOW COLUMNS IN TABLE "DB"."SCH"."Reviews"')
    assert [(r["column_name"], json.loads(r["data_type"])["type"]) for r in rows] == [
        ("ID", "FIXED"), ("review", "TEXT"), ("SCORE", "REAL"), ("R", "VARIANT")]
    assert {r["table_name"] for r in rows} == {"Reviews"} and rows[0]["database_name"] == "DB"


def test_string_literals_read_backslash_escapes_and_doubled_quotes_as_snowflake_does(session):
    [row] = _one(session, "SELECT 'it''s' AS A, 'back\\\\slash \\'q\\'' AS B, 'tab\\there' AS C")
    assert (row["A"], row["B"], row["C"]) == ("it's", "back\\slash 'q'", "tab\there")


def test_a_quoted_identifier_in_another_case_is_an_invalid_identifier(session):
    for sql in ('SELECT "REVIEW" FROM "Reviews"', 'SELECT review FROM "Reviews"',
                'INSERT INTO "Reviews" (ID, "Review") SELECT 1, \'x\''):
        with pytest.raises(SnowparkSQLException, match="invalid identifier '\"(REVIEW|Review)\"'"):
            _one(session, sql)


def test_table_names_are_case_sensitive_and_a_missing_table_is_named(session):
    with pytest.raises(SnowparkSQLException, match="Object 'DB.SCH.REVIEWS' does not exist or not authorized"):
        _one(session, "SELECT * FROM reviews")
    with pytest.raises(SnowparkSQLException, match="Schema 'DB.OTHER' does not exist"):
        _one(session, "CREATE TABLE DB.OTHER.T (A NUMBER)")


def test_variant_paths_and_casts_read_json_as_snowflake_paths_do(session):
    details = {"choices": [{"messages": "hello"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    _one(session, "CREATE TABLE E (RESPONSE VARIANT)")
    session.warehouse.duck.execute(  # a stored VARIANT, as AI_COMPLETE's details are (PARSE_JSON is not supported)
        f"INSERT INTO {session.table(['E']).duck_name} VALUES (?)", [json.dumps(details)])
    [stored] = _one(session, "SELECT TO_VARIANT(OBJECT_CONSTRUCT('a', ?, 'b', 'x')) AS V", params=[1])
    assert json.loads(stored["V"]) == {"a": 1, "b": "x"}
    [row] = _one(session, "SELECT r.RESPONSE:choices[0]:messages::VARCHAR AS REPLY, "
                          "r.RESPONSE:usage:prompt_tokens::NUMBER AS P, "
                          "(r.RESPONSE:usage:prompt_tokens * ? + r.RESPONSE:usage.completion_tokens * ?) / 10 AS COST, "
                          "r.RESPONSE:missing::VARCHAR AS M FROM E r", params=[2.0, 1.0])
    assert (row["REPLY"], row["P"], row["COST"], row["M"]) == ("hello", 3, 1.0, None)


def test_create_temporary_table_as_select_limit_0_keeps_the_column_types_and_no_rows(session):
    _one(session, 'CREATE TEMPORARY TABLE T AS SELECT 0::NUMBER AS ROW_ID, "review", NULL::VARCHAR AS "PROMPT" '
                  'FROM "Reviews" LIMIT 0')
    assert _one(session, "SELECT COUNT(*) AS N FROM T")[0]["N"] == 0
    assert [r["column_name"] for r in _one(session, "SHOW COLUMNS IN TABLE T")] == ["ROW_ID", "review", "PROMPT"]
    other = session.warehouse.session()
    with pytest.raises(SnowparkSQLException, match="does not exist"):  # temporary: this session's only
        _one(other, "SELECT * FROM T")
    session.close()
    assert ("DB", "SCH", "T") not in session.warehouse.table_keys()


def test_concat_is_null_when_an_argument_is_null_and_seq8_numbers_rows_in_scan_order(session):
    rows = _one(session, 'SELECT ROW_NUMBER() OVER (ORDER BY SEQ8()) AS N, CONCAT(?, "review", ?) AS P, '
                         'CONCAT(?, COALESCE("review"::VARCHAR, \'\'), ?) AS Q FROM "Reviews"',
                params=["<", ">", "<", ">"])
    assert [r["N"] for r in rows] == [1, 2, 3]
    assert [r["P"] for r in rows] == ["<good>", "<it's bad>", None]
    assert rows[2]["Q"] == "<>"


def test_insert_answers_the_rows_inserted_and_ddl_a_status(session):
    assert _one(session, "CREATE TABLE X (A NUMBER)")[0]["status"] == "Table X successfully created."
    assert _one(session, "INSERT INTO X (A) SELECT ID FROM \"Reviews\"")[0]["number of rows inserted"] == 3
    assert _one(session, "CREATE OR REPLACE TABLE X (B VARCHAR)")[0]["status"] == "Table X successfully created."
    assert _one(session, "SELECT COUNT(*) AS N FROM X")[0]["N"] == 0
    assert "successfully dropped" in _one(session, "DROP TABLE X")[0]["status"]


# --- refusals --------------------------------------------------------------------------------------------------


def test_bind_variables_are_refused_in_ddl(session):
    for sql in ("CREATE TABLE T AS SELECT ? AS A",
                "CREATE TEMPORARY TABLE T AS SELECT ? AS A FROM \"Reviews\" LIMIT 0"):
        with pytest.raises(SnowparkSQLException, match="Bind variables are not allowed in DDL statements.*sql-prepare"):
            _one(session, sql, params=[1])
    assert ("DB", "SCH", "T") not in session.warehouse.table_keys()


def test_the_bound_values_must_match_the_question_marks(session):
    with pytest.raises(SnowparkSQLException, match=r"Bind variable \? not set \(2 '\?' and 1 value"):
        _one(session, "SELECT ? AS A, ? AS B", params=[1])
    with pytest.raises(SnowparkSQLException, match=r"2 values bound to 1 '\?'"):
        _one(session, "SELECT ? AS A", params=[1, 2])


def test_a_statement_outside_the_grammar_is_refused_by_name(session):
    for sql in ("UPDATE \"Reviews\" SET ID = 1", "DELETE FROM \"Reviews\"", "MERGE INTO X USING Y ON 1 = 1",
                "ALTER TABLE \"Reviews\" ADD COLUMN Z NUMBER", "CALL SYSTEM$WAIT(1)", "COPY INTO X FROM @S"):
        with pytest.raises(SnowparkSQLException, match="does not support this statement: " + sql.split()[0]):
            _one(session, sql)


def test_functions_types_and_syntax_outside_the_grammar_are_refused(session):
    cases = {"SELECT PARSE_JSON('{}') AS A": "function PARSE_JSON",
             "SELECT CURRENT_TIMESTAMP() AS A": "function CURRENT_TIMESTAMP",
             "SELECT 1::TIMESTAMP_NTZ AS A": "type TIMESTAMP_NTZ",
             "SELECT $$text$$ AS A": "unexpected '\\$'",
             "CREATE TABLE T (A NUMBER NOT NULL)": "column definition",
             "SELECT * FROM (SELECT 1 AS A)": "subqueries in FROM"}
    for sql, reason in cases.items():
        with pytest.raises(SnowparkSQLException, match=reason):
            _one(session, sql)


def test_several_statements_in_one_call_are_refused_and_none_runs(session):
    with pytest.raises(SnowparkSQLException, match="statement count 2 did not match the desired statement count 1"):
        _one(session, "CREATE TABLE Y (A NUMBER); DROP TABLE \"Reviews\"")
    assert ("DB", "SCH", "Reviews") in session.warehouse.table_keys()
    assert ("DB", "SCH", "Y") not in session.warehouse.table_keys()
    assert _one(session, "SELECT 1 AS A;")[0]["A"] == 1  # one trailing semicolon is one statement


def test_creating_an_existing_table_without_or_replace_fails(session):
    with pytest.raises(SnowparkSQLException, match="Object 'DB.SCH.Reviews' already exists"):
        _one(session, 'CREATE TABLE "Reviews" (A NUMBER)')
    assert "already exists" in _one(session, 'CREATE TABLE IF NOT EXISTS "Reviews" (A NUMBER)')[0]["status"]


def test_a_bound_value_is_data_never_sql(session):
    text = "'); DROP TABLE \"Reviews\"; --"
    _one(session, 'INSERT INTO "Reviews" (ID, "review") SELECT ?, ?', params=[9, text])
    assert _one(session, 'SELECT "review" FROM "Reviews" WHERE ID = ?', params=[9])[0]["review"] == text
    assert ("DB", "SCH", "Reviews") in session.warehouse.table_keys()


def test_a_temporary_table_is_its_sessions_own_and_shadows_a_permanent_one_there(session):
    other = session.warehouse.session()
    _one(session, "CREATE TEMPORARY TABLE \"Reviews\" (A NUMBER)")
    _one(other, "CREATE TEMPORARY TABLE \"Reviews\" (B NUMBER)")  # another session's name space
    assert [r["column_name"] for r in _one(session, 'SHOW COLUMNS IN TABLE "Reviews"')] == ["A"]
    assert [r["column_name"] for r in _one(other, 'SHOW COLUMNS IN TABLE "Reviews"')] == ["B"]
    session.close()
    other.close()
    third = session.warehouse.session()
    assert [r["column_name"] for r in _one(third, 'SHOW COLUMNS IN TABLE "Reviews"')][:2] == ["ID", "review"]


def test_a_variant_path_on_a_varchar_column_is_refused(session):
    with pytest.raises(SnowparkSQLException, match="Invalid argument types for function 'GET_PATH'"):
        _one(session, 'SELECT "review":a::VARCHAR AS A FROM "Reviews"')


def test_a_qualified_column_must_be_spelled_as_its_own_table_spells_it(session):
    _one(session, 'CREATE TABLE "Other" (ID NUMBER, "REVIEW" VARCHAR)')
    rows = _one(session, 'SELECT o."REVIEW" AS A, r."review" AS B FROM "Reviews" r JOIN "Other" o ON o.ID = r.ID')
    assert rows == []
    with pytest.raises(SnowparkSQLException, match="invalid identifier '\"REVIEW\"'"):
        _one(session, 'SELECT r."REVIEW" AS A FROM "Reviews" r JOIN "Other" o ON o.ID = r.ID')


def test_malformed_statements_are_refused_and_name_the_statement(session):
    cases = {"SELECT 'unterminated AS A": "unterminated string literal",
             'SELECT "unterminated AS A': "unterminated quoted identifier",
             "SELECT 1 AS A /* no end": "unterminated comment",
             "CREATE TABLE T (A NUMBER, a VARCHAR)": "duplicate column name 'A'",
             "CREATE OR REPLACE TABLE IF NOT EXISTS T (A NUMBER)": "OR REPLACE and IF NOT EXISTS",
             "SELECT NO_SUCH_COLUMN FROM \"Reviews\"": "SQL compilation error: .*NO_SUCH_COLUMN",
             "": "empty SQL statement"}
    for sql, reason in cases.items():
        with pytest.raises(SnowparkSQLException, match=reason) as raised:
            _one(session, sql)
        assert raised.value.query == (sql or None)  # Snowpark keeps no empty query text
    assert ("DB", "SCH", "T") not in session.warehouse.table_keys()
