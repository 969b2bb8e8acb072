"""``adapters/matrix/trust.py``: which devices their owners cross-signed, read from a ``/keys/query``
answer and checked with real Ed25519 signatures (vodozemac accounts serve as key pairs)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import vodozemac

from adapters.matrix.trust import canonical_json, cross_signed_devices, signed_by

USER = "@sam:example.org"
Answer = dict[str, Any]


def _public(account: vodozemac.Account) -> str:
    return str(account.ed25519_key.to_base64())


def _sign(signer: vodozemac.Account, user: str, value: dict[str, Any]) -> dict[str, Any]:
    signature = signer.sign(canonical_json(value)).to_base64()
    signatures = copy.deepcopy(value.get("signatures", {}))
    signatures.setdefault(user, {})[f"ed25519:{_public(signer)}"] = signature
    return {**value, "signatures": signatures}


def _answer() -> Answer:
    """Sam with two devices: PHONE cross-signed, LAPTOP not."""
    master, ssk = vodozemac.Account(), vodozemac.Account()

    def cross_key(account: vodozemac.Account, usage: str) -> dict[str, Any]:
        return {"user_id": USER, "usage": [usage], "keys": {f"ed25519:{_public(account)}": _public(account)}}

    def device(device_id: str) -> dict[str, Any]:
        own = vodozemac.Account()
        keys = {
            "user_id": USER,
            "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{device_id}": _public(own), f"curve25519:{device_id}": "x"},
        }
        return _sign(own, USER, keys)

    return {
        "device_keys": {USER: {"PHONE": _sign(ssk, USER, device("PHONE")), "LAPTOP": device("LAPTOP")}},
        "master_keys": {USER: cross_key(master, "master")},
        "self_signing_keys": {USER: _sign(master, USER, cross_key(ssk, "self_signing"))},
        "unsigned_extra": {"ignored": True},
    }


def _tamper_device(answer: Answer) -> None:
    answer["device_keys"][USER]["PHONE"]["keys"]["curve25519:PHONE"] = "swapped"


def _unsign_ssk(answer: Answer) -> None:
    answer["self_signing_keys"][USER]["signatures"] = {}


def _no_master(answer: Answer) -> None:
    del answer["master_keys"][USER]


def _wrong_usage(answer: Answer) -> None:
    answer["self_signing_keys"][USER]["usage"] = ["user_signing"]


def _someone_elses_ssk(answer: Answer) -> None:
    answer["self_signing_keys"][USER]["user_id"] = "@mallory:example.org"


def _two_keys(answer: Answer) -> None:
    answer["master_keys"][USER]["keys"]["ed25519:other"] = "other"


def _garbage_signature(answer: Answer) -> None:
    sigs = answer["device_keys"][USER]["PHONE"]["signatures"][USER]
    for key_id in sigs:
        sigs[key_id] = "not base64!"


CASES: dict[str, tuple[Callable[[Answer], None] | None, set[tuple[str, str]]]] = {
    "cross-signed and not": (None, {(USER, "PHONE")}),
    "device keys changed after signing": (_tamper_device, set()),
    "self-signing key not signed by the master key": (_unsign_ssk, set()),
    "no master key": (_no_master, set()),
    "a key for another use": (_wrong_usage, set()),
    "a self-signing key of someone else": (_someone_elses_ssk, set()),
    "a master key with two keys": (_two_keys, set()),
    "a signature that is no signature": (_garbage_signature, set()),
}


@pytest.mark.parametrize(("change", "expected"), CASES.values(), ids=list(CASES))
def test_cross_signed_devices(change: Callable[[Answer], None] | None, expected: set[tuple[str, str]]) -> None:
    answer = _answer()
    if change is not None:
        change(answer)
    assert cross_signed_devices(answer) == expected


def test_nothing_to_read() -> None:
    assert cross_signed_devices({}) == set()
    assert cross_signed_devices({"device_keys": "no"}) == set()


def test_canonical_json_leaves_out_signatures_and_unsigned() -> None:
    value = {"b": 1, "a": "é", "signatures": {"x": 1}, "unsigned": {"y": 2}}
    assert canonical_json(value) == '{"a":"é","b":1}'.encode()


def test_signed_by_wants_the_named_key() -> None:
    signer = vodozemac.Account()
    value = _sign(signer, USER, {"hello": "world"})
    assert signed_by(value, USER, f"ed25519:{_public(signer)}", _public(signer))
    other = vodozemac.Account()
    assert not signed_by(value, USER, f"ed25519:{_public(signer)}", _public(other))
    assert not signed_by(value, "@other:example.org", f"ed25519:{_public(signer)}", _public(signer))
