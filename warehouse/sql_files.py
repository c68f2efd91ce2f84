"""Read the SQL files shipped in ``warehouse/sql/`` so statements live beside, not inside, code."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def read_sql(relative_path: str) -> str:
    """The text of ``warehouse/sql/<relative_path>``."""
    return resources.files("warehouse").joinpath("sql", relative_path).read_text("utf-8")


def sql_names(folder: str) -> list[str]:
    """The ``.sql`` files in a folder of ``warehouse/sql/``, sorted by name."""
    entries = resources.files("warehouse").joinpath("sql", folder).iterdir()
    return sorted(entry.name for entry in entries if entry.name.endswith(".sql"))
