"""`Row` declares a table; `Table` collects its rows column by column, ready for Arrow."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

__all__ = ("Columns", "Row", "Table")

Columns = dict[str, list[Any]]


class Row(msgspec.Struct, frozen=True, gc=False):
    """One row of the table named `table`; a subclass's fields are its columns, in order."""

    table: ClassVar[str]


class Table:
    """The rows of one table, as one list per column."""

    __slots__ = ("_lists", "columns")

    def __init__(self, row: type[Row]) -> None:
        self.columns: Columns = {name: [] for name in row.__struct_fields__}
        self._lists = tuple(self.columns.values())

    def add(self, row: Row) -> None:
        for column, value in zip(self._lists, msgspec.structs.astuple(row), strict=True):
            column.append(value)
