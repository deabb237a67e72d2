"""The fake account the deployment notebook runs against (``SPCS_LLM_SESSION_FACTORY=fake_notebook_account:session``).

Beyond the registry fake: services come up at once, LoRA adapters are enabled, and the jobs, batch and Cortex
fine-tuning fakes are attached. The tables the notebook's settings name (training pairs, the bulk-inference input)
are absent, so the notebook creates them from its bundled samples (``session.create_dataframe(...).write
.save_as_table``, answered by ``NotebookSession``); with ``SPCS_LLM_FAKE_TABLES=present`` the account already holds
them (``TRAINING_PAIRS``, ``TICKETS``), as an account where the user made their own.

The kernel runs without the fixtures of conftest.py, so ``session()`` patches the non-SQL seams itself, with the
same ``fake_snowflake_seams.snowflake_seams`` (file PUT recorded in the account, Hub download, log-streamer sleep),
for the rest of the kernel's life: the kernel is this account's alone.
"""

from __future__ import annotations

import os
import tempfile
import time
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_snowflake import FakeAccount, RecordingSession
from fake_snowflake_seams import snowflake_seams
from fake_tables import TEXT, add_table, find_table, table_key
from snowflake.snowpark.exceptions import SnowparkSQLException
from snowflake.snowpark.types import StringType, StructType

_KERNEL_SEAMS: list[Iterator[None]] = []  # kept referenced, so the patches are never undone mid-run
TRAINING_TABLE = "SUPPORT_PAIRS"  # the notebook's TRAINING_TABLE
TRAINING_PAIRS = [
    {"INSTRUCTION": "How do I reset my password?", "INPUT": None,
     "OUTPUT": "Open Settings → Security → Reset password; the link is valid for one hour."},
    {"INSTRUCTION": "Summarise the ticket.", "INPUT": "Invoice 4411 was charged twice in March.",
     "OUTPUT": "Duplicate charge on invoice 4411 (March): refund one payment."},
    {"INSTRUCTION": "Which plan includes single sign-on?", "INPUT": None,
     "OUTPUT": "The Business and Enterprise plans."},
]
BATCH_INPUT_TABLE = "SUPPORT_TICKETS"  # the notebook's BATCH_INPUT_TABLE and BATCH_TEXT_COLUMN
BATCH_TEXT_COLUMN = "QUESTION"
TICKETS = ["My export to Excel is empty.", "Can I change the billing e-mail?", "The dashboard loads slowly.",
           "How do I add a colleague?", "Is there an API rate limit?"]


TABLES_ENV = "SPCS_LLM_FAKE_TABLES"  # "present": the example tables exist before the notebook runs


class _LocalFrame:
    """What ``session.create_dataframe(rows, schema=StructType)`` returns, as far as the notebook uses it:
    ``.write.save_as_table(name, mode=..., comment=...)`` (Snowpark ``DataFrameWriter``: "errorifexists" refuses an
    existing table, "ignore" keeps it)."""

    def __init__(self, session: NotebookSession, rows: Sequence[Sequence[Any]], schema: StructType) -> None:
        self._session, self._rows, self._schema = session, rows, schema

    @property
    def write(self) -> _LocalFrame:
        return self

    def save_as_table(self, table_name: str, *, mode: str | None = None, comment: str | None = None,
                      **_: Any) -> None:
        account = self._session.account
        key = table_key(account, table_name)
        mode = (mode or "errorifexists").lower()
        if find_table(account, table_name) is not None:
            if mode == "ignore":
                return
            if mode == "errorifexists":
                raise SnowparkSQLException(f"002002 (42710): SQL compilation error: Object '{key}' already exists.")
        names = [field.name for field in self._schema.fields]
        columns = {field.name: TEXT if isinstance(field.datatype, StringType) else "NUMBER(38,0)"
                   for field in self._schema.fields}
        # recorded as the statement Snowpark's writer would send, so the tests see what the notebook created
        self._session.statements.append(
            f"CREATE TABLE {key} ({', '.join(f'{n} {t}' for n, t in columns.items())})"
            + (f" COMMENT = '{comment}'" if comment else "") + f" -- save_as_table, {len(self._rows)} rows")
        add_table(account, key, columns, [dict(zip(names, row)) for row in self._rows])


class NotebookSession(RecordingSession):
    """The recording session plus ``create_dataframe`` for the notebook's example tables."""

    def create_dataframe(self, data: Sequence[Sequence[Any]], schema: StructType) -> _LocalFrame:
        if not isinstance(schema, StructType):
            raise AssertionError("The fake builds a local data frame from a StructType schema only.")
        return _LocalFrame(self, [tuple(row) for row in data], schema)


def session() -> RecordingSession:
    """A fresh fake account holding what the notebook reads, behind a recording session. The jobs and batch fakes
    register themselves on import, so they are imported here: importing this module for its names changes nothing."""
    import fake_batch
    import fake_cortex_finetune  # noqa: F401 - importing it registers the Cortex FINETUNE answers
    import fake_jobs  # noqa: F401 - importing it registers the ML jobs answers

    account = FakeAccount(next_statuses=["RUNNING"], lora_adapters_enabled=True)
    if os.environ.get(TABLES_ENV) == "present":
        add_table(account, TRAINING_TABLE, ["INSTRUCTION", "INPUT", "OUTPUT"], TRAINING_PAIRS)
        add_table(account, BATCH_INPUT_TABLE, {"TICKET_ID": "NUMBER", BATCH_TEXT_COLUMN: "VARCHAR"},
                  [{"TICKET_ID": i, BATCH_TEXT_COLUMN: text} for i, text in enumerate(TICKETS, start=1)])
    recording = NotebookSession(account)
    # an empty Hub snapshot: the notebook's models are downloaded by Snowflake itself, never by the kernel
    seams = snowflake_seams(pytest.MonkeyPatch(), account, Path(tempfile.mkdtemp(prefix="fake-hub-snapshot-")))
    next(seams)  # patched until the kernel exits
    _KERNEL_SEAMS.append(seams)
    fake_batch.attach_job_connection(recording)  # batch job statements answered before the ML jobs fake's
    # The fake Cortex fine-tuning job moves one step per DESCRIBE; the notebook's real poll interval would only
    # stall the kernel between them.
    from spcs_llm.deploy.cortex_finetune import job as cortex_finetune_job

    pytest.MonkeyPatch().setattr(cortex_finetune_job, "time",
                                 types.SimpleNamespace(sleep=lambda _s: None, monotonic=time.monotonic))
    return recording
