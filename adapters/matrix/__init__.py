"""Matrix: one ``m.thread`` per conversation in a room, staff answer from any Matrix client."""

from __future__ import annotations

from adapters.plugin import Plugin
from bridge.endpoint import StateStore
from config.settings import Settings


def build(settings: Settings, state: StateStore) -> Plugin | None:
    """The Matrix endpoint when ``MATRIX_HOMESERVER`` is set (nio is imported only then)."""
    if settings.matrix_homeserver is None:
        return None
    from adapters.matrix.endpoint import MatrixEndpoint

    return Plugin(MatrixEndpoint.from_settings(settings, state))
