"""``sitechat doctor`` on the Matrix store with several instances possible: a guess whether the store
path is this machine's own disk, said as a warning (never counted as a problem: it can be wrong)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings
from sitechat.doctor import _local_storage, _matrix_store


class FakeDatabase:
    def __init__(self, is_sqlite: bool) -> None:
        self.is_sqlite = is_sqlite


def _settings(store: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        matrix_homeserver="https://matrix.example.org",
        matrix_user_id="@bot:example.org",
        matrix_password="pw",
        matrix_store_path=store,
        sites={"acme": {"name": "Acme", "origins": ["https://acme.example"], "matrix_room": "!r:example.org"}},
    )


def test_the_root_file_system_is_local_and_a_mounted_one_is_not() -> None:
    assert _local_storage(Path("/sitechat-matrix-store/not-there-yet"))
    assert not _local_storage(Path("/proc/sitechat-matrix-store"))  # another file system, mounted


def test_the_warning_is_for_postgresql_only(capsys: pytest.CaptureFixture[str]) -> None:
    _matrix_store(_settings("/sitechat-matrix-store"), FakeDatabase(is_sqlite=True))  # type: ignore[arg-type]
    assert capsys.readouterr().out == ""
    _matrix_store(_settings("/sitechat-matrix-store"), FakeDatabase(is_sqlite=False))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.startswith("  [warning] MATRIX_STORE_PATH=/sitechat-matrix-store looks like this machine's own disk")
    assert "shared" in out and "can be wrong" in out
    _matrix_store(_settings("/proc/sitechat-matrix-store"), FakeDatabase(is_sqlite=False))  # type: ignore[arg-type]
    assert capsys.readouterr().out == ""
