"""A PostgreSQL function's call as a statement built once: ``SELECT <its OUT parameters> FROM f(:a, :b, …)``,
its parameters named as the function's arguments (``bridge/store/visitor_lines.py``, ``agent_lines.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import ColumnClause
from sqlalchemy.types import TypeEngine


def function_call(
    name: str, arguments: Sequence[str], answers: Sequence[ColumnClause[Any]], types: Mapping[str, TypeEngine[Any]]
) -> Select[Any]:
    """The call of function ``name`` with ``arguments`` in its order (text unless ``types`` names another
    type), answering the columns ``answers``."""
    called = getattr(func, name)(*(bindparam(a, type_=types.get(a, String())) for a in arguments))
    return select(*called.table_valued(*answers).c)
