"""Fakes of ``dataiku.customrecipe`` and ``dataiku.Dataset``, for running a plugin recipe's ``recipe.py`` as DSS
would (top to bottom) without DSS. Built on ``dataiku_fakes`` (its ``_module`` registers the modules and its
``uninstall`` removes them).

The surface, as the Dataiku docs describe it ("Plugin components: recipes"; developer guide, datasets):
``get_input_names_for_role(role)`` / ``get_output_names_for_role(role)`` / ``get_recipe_config()``, and
``Dataset(name)`` with ``get_location_info()`` (``{"locationInfoType": "SQL", "info": {"databaseType": "Snowflake",
"schema", "table", "quotedResolvedTableName", "connectionName"}}``), ``get_config()["params"]["connection"]``,
``read_schema()`` and ``write_schema(columns)`` (recorded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataiku_fakes import _module


@dataclass
class FakeDataset:
    """One DSS dataset stored in a Snowflake table (or, with ``database_type``, elsewhere)."""

    name: str
    connection: str
    database: str
    schema: str
    table: str
    columns: list[dict[str, Any]] = field(default_factory=list)  # the DSS schema read_schema returns
    database_type: str = "Snowflake"
    written_schema: list[dict[str, Any]] | None = None

    def location_info(self) -> dict[str, Any]:
        quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (self.database, self.schema, self.table))
        return {"locationInfoType": "SQL", "info": {
            "databaseType": self.database_type, "schema": self.schema, "table": self.table,
            "quotedResolvedTableName": quoted, "connectionName": self.connection}}


class RecipeWorld:
    """What the recipe sees: its roles, its config and the project's datasets."""

    def __init__(self) -> None:
        self.inputs: dict[str, list[str]] = {}
        self.outputs: dict[str, list[str]] = {}
        self.config: dict[str, Any] = {}
        self.datasets: dict[str, FakeDataset] = {}

    def add(self, dataset: FakeDataset, *, input_role: str | None = None, output_role: str | None = None) -> None:
        self.datasets[dataset.name] = dataset
        if input_role:
            self.inputs.setdefault(input_role, []).append(dataset.name)
        if output_role:
            self.outputs.setdefault(output_role, []).append(dataset.name)


WORLD = RecipeWorld()


class Dataset:
    """``dataiku.Dataset(name)``."""

    def __init__(self, name: str, project_key: str | None = None, ignore_flow: bool = False) -> None:
        if name not in WORLD.datasets:
            raise ValueError(f"Dataset {name} does not exist")
        self._dataset = WORLD.datasets[name]
        self.name = name

    def get_location_info(self, sensitive_info: bool = False) -> dict[str, Any]:
        return self._dataset.location_info()

    def get_config(self) -> dict[str, Any]:
        return {"type": self._dataset.database_type, "params": {
            "connection": self._dataset.connection, "table": self._dataset.table, "schema": self._dataset.schema}}

    def read_schema(self, raise_if_empty: bool = True) -> list[dict[str, Any]]:
        return [dict(column) for column in self._dataset.columns]

    def write_schema(self, columns: list[dict[str, Any]], dropAndCreate: bool = False) -> None:
        self._dataset.written_schema = [dict(column) for column in columns]

    def iter_rows(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("The recipe read rows into DSS: it must run inside Snowflake.")

    get_dataframe = iter_dataframes = iter_rows


def install_recipe(world: RecipeWorld | None = None) -> RecipeWorld:
    """Register ``dataiku.customrecipe`` and ``dataiku.Dataset`` answering from ``world`` (a fresh one by default)."""
    global WORLD
    WORLD = world or RecipeWorld()
    customrecipe = _module("dataiku.customrecipe")
    customrecipe.get_input_names_for_role = lambda role: list(WORLD.inputs.get(role, []))  # type: ignore[attr-defined]
    customrecipe.get_output_names_for_role = lambda role: list(WORLD.outputs.get(role, []))  # type: ignore[attr-defined]
    customrecipe.get_recipe_config = lambda: dict(WORLD.config)  # type: ignore[attr-defined]
    customrecipe.get_plugin_config = lambda: {}  # type: ignore[attr-defined]
    _module("dataiku").Dataset = Dataset  # type: ignore[attr-defined]
    return WORLD
