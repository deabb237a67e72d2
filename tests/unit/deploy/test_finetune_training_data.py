"""Training pairs from rows and files: columns by any case, optional input, nothing skipped silently."""

from __future__ import annotations

import json
import types

import pytest
from snowflake.snowpark import Row

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.finetune.job_main import table_examples
from spcs_llm.deploy.finetune.training import TrainingExample, step_rows
from spcs_llm.deploy.finetune.training_data import TrainingColumns, examples_from_file, examples_from_records

COLUMNS = TrainingColumns()


def test_rows_become_examples_with_the_optional_input():
    rows = [{"INSTRUCTION": "Translate", "INPUT": "chat", "OUTPUT": "cat"}, {"instruction": "Hi", "output": "Hello"}]
    assert examples_from_records(rows, COLUMNS, "t") == [
        TrainingExample(instruction="Translate", output="cat", input="chat"),
        TrainingExample(instruction="Hi", output="Hello"),
    ]


def test_rows_with_an_empty_instruction_or_output_fail_the_load_with_their_numbers():
    rows = [{"instruction": "a", "output": "b"}, {"instruction": " ", "output": "b"},
            {"instruction": "c", "output": None}]
    with pytest.raises(ConfigurationError, match=r"2 row\(s\) .* \(rows 2, 3\)") as error:
        examples_from_records(rows, COLUMNS, "pairs.jsonl")
    assert "Fill or delete" in error.value.fix


def test_long_lists_of_bad_rows_are_cut_and_an_empty_source_is_refused():
    with pytest.raises(ConfigurationError, match=r"12 row\(s\).*rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 \.\.\.\)"):
        examples_from_records([{"instruction": "x"}] * 12, COLUMNS, "t")
    with pytest.raises(ConfigurationError, match="has no rows"):
        examples_from_records([], COLUMNS, "t")


def test_jsonl_and_csv_files_with_chosen_column_names(tmp_path):
    columns = TrainingColumns(instruction="prompt", output="response", input=None)
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"prompt": f"q{i}", "response": f"a{i}"}) for i in range(3)) + "\n\n")
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("prompt,response\n\"q, with comma\",a\n")
    assert [e.output for e in examples_from_file(jsonl, columns)] == ["a0", "a1", "a2"]
    assert examples_from_file(csv_file, columns) == [TrainingExample(instruction="q, with comma", output="a")]


@pytest.mark.parametrize("name, text, message", [
    ("bad.jsonl", '{"instruction": "a", "output": "b"}\nnot json\n', "line 2 is not JSON"),
    ("list.json", '[{"instruction": "a", "output": "b"}, 3]', r"record\(s\) 2 are not JSON objects"),
    ("cols.jsonl", '{"question": "a", "answer": "b"}\n',
     r"has no instruction, output column \(it has: question, answer\)"),
])
def test_malformed_files_name_the_line_or_the_columns(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        examples_from_file(path, COLUMNS)


def test_mini_batches_take_consecutive_slices_and_wrap_round():
    assert [step_rows(step, 2, 5) for step in (1, 2, 3, 4)] == [[0, 1], [2, 3], [4, 0], [1, 2]]
    assert step_rows(7, 10, 3) == [0, 1, 2]  # a batch larger than the data is the whole data


class _TableSession:
    """The two Snowpark calls the job makes to read a table: its schema, then one SELECT of the wanted columns."""

    def __init__(self, columns: list[str], rows: list[dict]) -> None:
        self.columns, self.rows, self.queries = columns, rows, []

    def table(self, name: str):
        fields = [types.SimpleNamespace(name=column) for column in self.columns]
        return types.SimpleNamespace(schema=types.SimpleNamespace(fields=fields))

    def sql(self, query: str):
        self.queries.append(query)
        return types.SimpleNamespace(collect=lambda: [Row(**row) for row in self.rows])


def test_the_job_reads_a_table_with_one_select_of_the_wanted_columns():
    session = _TableSession(["INSTRUCTION", "INPUT", "OUTPUT", "EXTRA"],
                            [{"INSTRUCTION": "Translate", "INPUT": "chat", "OUTPUT": "cat"}])
    examples = table_examples(session, "DB.S.PAIRS", COLUMNS)
    assert session.queries == ["SELECT instruction, input, output FROM DB.S.PAIRS"]
    assert examples == [TrainingExample(instruction="Translate", output="cat", input="chat")]
    no_input = _TableSession(["INSTRUCTION", "OUTPUT"], [{"INSTRUCTION": "Hi", "OUTPUT": "Hello"}])
    assert table_examples(no_input, "DB.S.PAIRS", COLUMNS) == [TrainingExample(instruction="Hi", output="Hello")]
    assert no_input.queries == ["SELECT instruction, output FROM DB.S.PAIRS"]
    with pytest.raises(ConfigurationError, match=r"Table DB.S.PAIRS has no output column"):
        table_examples(_TableSession(["INSTRUCTION"], []), "DB.S.PAIRS", COLUMNS)
