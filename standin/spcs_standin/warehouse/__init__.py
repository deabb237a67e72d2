"""A stand-in Snowflake warehouse: DuckDB behind a Snowpark-like session, with ``AI_COMPLETE`` / ``AI_EMBED`` answered
by the stand-in's Cortex models, for the SQL the Flow recipe's Cortex path sends (``spcs_llm.recipes``) and no more.

- ``lexer.py``: Snowflake's lexical rules (string escapes, quoted identifiers, binds, comments);
- ``statements.py``: the statement grammar and the rules on binds and statement counts;
- ``expressions.py`` / ``ai_calls.py``: expressions translated to DuckDB, identifiers checked case-sensitively;
- ``catalog.py``: tables by exact Snowflake name; ``cortex_functions.py``: the model calls;
- ``session.py``: the warehouse and its sessions (``Warehouse().session()``).

It reads SQL text on its own: nothing here imports the code that writes that SQL (the recipe, the deployment library)
or the connectors' request and answer code; two import-linter contracts in pyproject.toml hold it to that.
"""

from spcs_standin.warehouse.session import Warehouse, WarehouseSession

__all__ = ["Warehouse", "WarehouseSession"]
