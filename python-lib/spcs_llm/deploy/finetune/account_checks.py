"""What ``check_finetune`` (job.py) asks the account before a job is submitted: the training table or stage file
(every pair checked here, before a GPU node is paid for) and the compute pool (a priced GPU family). Nothing here
writes; every refusal is a ConfigurationError naming the option to change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.dependencies import sql_error_type
from spcs_llm.deploy.families import check_instance_family
from spcs_llm.deploy.finetune.training_data import TrainingColumns, examples_from_file, missing_columns
from spcs_llm.deploy.services.pools import pool_billing


def check_table(session: Any, table: str, columns: TrainingColumns) -> tuple[int, str | None]:
    """The table's row count and its input column (None if it has none); refuses missing columns and empty rows."""
    try:
        available = [str(row["name"]) for row in session.sql(f"DESCRIBE TABLE {table}").collect()]
    except sql_error_type():
        raise ConfigurationError(f"Table {table} does not exist or the role cannot read it.",
                                 fix="Check --table (and --database / --schema), or grant SELECT on it.") from None
    missing = missing_columns(available, columns)
    if missing:
        raise ConfigurationError(
            f"Table {table} has no {', '.join(missing)} column (it has: {', '.join(available)}).",
            fix="Name the columns with --instruction-column / --input-column / --output-column.")
    empty = f"NULLIF(TRIM({columns.instruction}), '') IS NULL OR NULLIF(TRIM({columns.output}), '') IS NULL"
    (row,) = session.sql(f"SELECT COUNT(*) AS TOTAL_ROWS, COUNT_IF({empty}) AS EMPTY_ROWS FROM {table}").collect()
    total, empty_rows = int(row["TOTAL_ROWS"]), int(row["EMPTY_ROWS"])
    if total == 0:
        raise ConfigurationError(f"Table {table} has no rows.", fix="Point --table at the training pairs.")
    if empty_rows:
        raise ConfigurationError(
            f"Table {table}: {empty_rows} of {total} rows have an empty {columns.instruction} or {columns.output}.",
            fix=f"Fill or delete them (find them with SELECT * FROM {table} WHERE {empty}), or train on a view "
                "without them.")
    present = {name.upper() for name in available}
    return total, columns.input if columns.input and columns.input.upper() in present else None


def check_stage_file(session: Any, location: str, columns: TrainingColumns) -> tuple[int, str | None]:
    """Download the pairs file once and check every row here, before a GPU node is paid for."""
    try:
        listed = session.sql(f"LIST {location}").collect()
    except sql_error_type():
        raise ConfigurationError(
            f"{location} could not be read.",
            fix="Check --stage-file (upload it with PUT first), or grant READ on the stage.") from None
    if not listed:
        raise ConfigurationError(f"{location} does not exist.", fix="Upload the file with PUT, then re-run.")
    with tempfile.TemporaryDirectory(prefix="spcs-llm-pairs-") as folder:
        session.file.get(location, folder)
        examples = examples_from_file(Path(folder) / location.rsplit("/", 1)[-1], columns)
    has_input = columns.input is not None and any(example.input for example in examples)
    return len(examples), columns.input if has_input else None


def check_pool(session: Any, pool: str, *, allow_cpu: bool) -> tuple[str | None, float | None]:
    """The pool's instance family and credits per node-hour; a missing pool or a CPU pool is refused."""
    rows = session.sql(f"SHOW COMPUTE POOLS LIKE '{pool}'").collect()
    if not rows:
        raise ConfigurationError(f"Compute pool {pool} does not exist or the role cannot use it.",
                                 fix="Run `spcs-llm setup-sql` and apply it, or pass --compute-pool.")
    billing = pool_billing(rows[0].as_dict())
    if not allow_cpu:
        try:
            check_instance_family(billing.instance_family, gpu=True, credits_per_hour=billing.credits_per_node_hour,
                                  option=f"Compute pool {pool}'s family")
        except ConfigurationError as exc:
            raise ConfigurationError(exc.message, fix="Pass --compute-pool with a GPU pool (LoRA training of a 7B "
                                     "model needs a GPU), or --allow-cpu-pool for a tiny model.") from None
    return billing.instance_family, billing.credits_per_node_hour
