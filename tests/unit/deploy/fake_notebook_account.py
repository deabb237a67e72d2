"""The fake account the deployment notebook runs against (``SPCS_LLM_SESSION_FACTORY=fake_notebook_account:session``).

Beyond the registry fake: services come up at once, LoRA adapters are enabled, the tables the notebook's settings
name exist (training pairs, the bulk-inference input), and the jobs, batch and Cortex fine-tuning fakes are attached.

The kernel runs without the fixtures of conftest.py, so ``session()`` patches the non-SQL seams itself, with the
same ``fake_snowflake_seams.snowflake_seams`` (file PUT recorded in the account, Hub download, log-streamer sleep),
for the rest of the kernel's life: the kernel is this account's alone.
"""

from __future__ import annotations

import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_snowflake import FakeAccount, RecordingSession
from fake_snowflake_seams import snowflake_seams
from fake_tables import add_table

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


def session() -> RecordingSession:
    """A fresh fake account holding what the notebook reads, behind a recording session. The jobs and batch fakes
    register themselves on import, so they are imported here: importing this module for its names changes nothing."""
    import fake_batch
    import fake_cortex_finetune  # noqa: F401 - importing it registers the Cortex FINETUNE answers
    import fake_jobs  # noqa: F401 - importing it registers the ML jobs answers

    account = FakeAccount(next_statuses=["RUNNING"], lora_adapters_enabled=True)
    add_table(account, TRAINING_TABLE, ["INSTRUCTION", "INPUT", "OUTPUT"], TRAINING_PAIRS)
    add_table(account, BATCH_INPUT_TABLE, {"TICKET_ID": "NUMBER", BATCH_TEXT_COLUMN: "VARCHAR"},
              [{"TICKET_ID": i, BATCH_TEXT_COLUMN: text} for i, text in enumerate(TICKETS, start=1)])
    recording = RecordingSession(account)
    # an empty Hub snapshot: the notebook's models are downloaded by Snowflake itself, never by the kernel
    seams = snowflake_seams(pytest.MonkeyPatch(), account, Path(tempfile.mkdtemp(prefix="fake-hub-snapshot-")))
    next(seams)  # patched until the kernel exits
    _KERNEL_SEAMS.append(seams)
    fake_batch.attach_job_connection(recording)  # batch job statements answered before the ML jobs fake's
    # The fake Cortex fine-tuning job moves one step per DESCRIBE; the notebook's real poll interval would only
    # stall the kernel between them.
    from spcs_llm.deploy import cortex_finetune_job

    pytest.MonkeyPatch().setattr(cortex_finetune_job, "time",
                                 types.SimpleNamespace(sleep=lambda _s: None, monotonic=time.monotonic))
    return recording
