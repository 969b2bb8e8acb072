"""Matrix: one ``m.thread`` per conversation in a room, staff answer from any Matrix client."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.plugin import Plugin
from bridge.endpoint import StateStore
from config.parts import MatrixSettings


def build(matrix: MatrixSettings | None, state: StateStore, *, rooms: Sequence[str], note_prefix: str) -> Plugin | None:
    """The Matrix endpoint when Matrix is configured (``MATRIX_HOMESERVER``; nio is imported only then).

    ``rooms``: every room the sites route to (the bot joins them); ``note_prefix``: shown in each thread's
    root, so staff know how to write a note.
    """
    if matrix is None:
        return None
    from adapters.matrix.endpoint import MatrixEndpoint
    from adapters.matrix.trust import Trust

    return Plugin(
        MatrixEndpoint(
            homeserver=matrix.homeserver,
            user_id=matrix.user_id,
            password=matrix.password.get_secret_value() if matrix.password else None,
            access_token=matrix.access_token.get_secret_value() if matrix.access_token else None,
            device_id=matrix.device_id,
            staff=matrix.staff,
            rooms=rooms,
            state=state,
            store_path=matrix.store_path,
            trust=Trust(matrix.trust),
            note_prefix=note_prefix,
        )
    )
