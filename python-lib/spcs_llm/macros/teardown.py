"""Macro *Tear down SPCS*: shows the teardown SQL first, and runs it only when the confirmation field holds the
registry database's name — the same typed confirmation as ``spcs-llm teardown --execute`` (``run_teardown``).

Without the name, no Snowflake session is opened at all: reviewing what would be dropped costs nothing.
"""

from __future__ import annotations

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.services.sql import TeardownIncompleteError, run_teardown, teardown_sql
from spcs_llm.macros.page import Page, Params, Progress, run_page

NAME_PARAMS = ("database", "gpu_pool", "cpu_pool", "warehouse", "deployer_role", "user_role",
               "external_access_integration", "oauth_integration")
PARAMS = frozenset({"connection", *NAME_PARAMS, "keep_models", "confirm_database"})


class TeardownMacro:
    progress_target = (3, "NONE")

    def __init__(self, config: dict) -> None:
        self.params = Params(config, PARAMS)

    def run(self, progress: Progress) -> str:
        return run_page("Tear down SPCS", lambda page: self._teardown(page, progress))

    def _teardown(self, page: Page, progress: Progress) -> None:
        params = self.params
        names = params.names(*NAME_PARAMS)
        keep_models = params.flag("keep_models")
        dropped = ("the compute pools and the warehouse (the registered models are kept)" if keep_models else
                   f"the compute pools, the warehouse, database {names.database} with its registered models, the "
                   "integrations and the roles")
        page.heading("What this drops")
        page.paragraph(f"This stops all SPCS billing by dropping {dropped}.")
        page.pre(teardown_sql(names, keep_models=keep_models).strip())
        progress(1)
        typed = params.text("confirm_database")
        if not typed:
            page.notice(f"Nothing was dropped. To run the SQL above, type {names.database} in 'Type the database "
                        "name to confirm' and run the macro again.")
            progress(3)
            return
        if typed.upper() != names.database:
            raise ConfigurationError(
                f"The confirmation {typed!r} is not the database name {names.database}; nothing was dropped.",
                fix=f"Type {names.database} exactly in 'Type the database name to confirm', or leave it empty to "
                    "only review the SQL.")
        session = params.session()
        progress(2)
        try:
            ran = run_teardown(session, names, keep_models=keep_models, confirmation=typed)
        except TeardownIncompleteError as stopped:
            _list(page, "Ran before the failure", stopped.ran)
            _list(page, "Not run (still in place)", [stopped.failed, *stopped.not_run])
            raise
        _list(page, "Dropped", ran)
        progress(3)


def _list(page: Page, title: str, statements: list[str]) -> None:
    page.heading(f"{title}: {len(statements)} statement(s)")
    if statements:
        page.pre(";\n".join(statements) + ";")
