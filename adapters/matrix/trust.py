"""Whose devices get the bot's room keys (``MATRIX_TRUST``), and cross-signing checked by hand. Pure: no I/O.

``members``: every device of the room's members, each pinned on first use (nio keeps a device's
Ed25519 key from its first key query and ignores a later, different one for the same device id).

``verified``: only devices their owner has cross-signed: the device's keys carry a valid signature of
the owner's self-signing key, which carries a valid signature of the owner's master key — what Element
shows as a "verified session" in the owner's own session list. A new login that its owner never
verified (a stolen password, say) gets nothing. matrix-nio reads no cross-signing keys, so the
``/keys/query`` answer is checked here, with vodozemac's Ed25519. The owner's master key is taken as
the homeserver publishes it: this guards against unverified sessions, not against a homeserver that
replaces a person's whole identity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import vodozemac


class Trust(StrEnum):
    MEMBERS = "members"
    VERIFIED = "verified"


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Matrix canonical JSON of a signed object: no ``signatures``/``unsigned``, sorted keys, no spaces."""
    stripped = {k: v for k, v in value.items() if k not in ("signatures", "unsigned")}
    return json.dumps(stripped, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_by(value: Mapping[str, Any], signer: str, key_id: str, public_key: str) -> bool:
    """Whether ``value`` carries a valid signature of ``signer``'s Ed25519 key ``key_id`` (``ed25519:…``)."""
    signatures = value.get("signatures")
    signature = signatures.get(signer, {}).get(key_id) if isinstance(signatures, dict) else None
    if not isinstance(signature, str):
        return False
    try:
        key = vodozemac.Ed25519PublicKey.from_base64(public_key)
        key.verify_signature(canonical_json(value), vodozemac.Ed25519Signature.from_base64(signature))
    except (vodozemac.KeyException, vodozemac.SignatureException, ValueError, TypeError):
        return False
    return True


def _single_key(cross_signing_key: Any, user_id: str, usage: str) -> tuple[str, str] | None:
    """(key id, public key) of a cross-signing key object for ``user_id`` with ``usage``; None if malformed."""
    if not isinstance(cross_signing_key, dict) or cross_signing_key.get("user_id") != user_id:
        return None
    if usage not in (cross_signing_key.get("usage") or []):
        return None
    keys = cross_signing_key.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        return None
    ((key_id, public),) = keys.items()
    if not isinstance(key_id, str) or not key_id.startswith("ed25519:") or not isinstance(public, str):
        return None
    return key_id, public


def self_signing_key(answer: Mapping[str, Any], user_id: str) -> tuple[str, str] | None:
    """The user's self-signing key from a ``/keys/query`` answer, when their master key signed it."""
    master = _single_key((answer.get("master_keys") or {}).get(user_id), user_id, "master")
    ssk_object = (answer.get("self_signing_keys") or {}).get(user_id)
    ssk = _single_key(ssk_object, user_id, "self_signing")
    if master is None or ssk is None or not isinstance(ssk_object, dict) or not signed_by(ssk_object, user_id, *master):
        return None
    return ssk


def cross_signed_devices(answer: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(user id, device id) of every device in a ``/keys/query`` answer that its owner cross-signed."""
    found: set[tuple[str, str]] = set()
    device_keys = answer.get("device_keys")
    if not isinstance(device_keys, dict):
        return found
    for user_id, devices in device_keys.items():
        ssk = self_signing_key(answer, user_id)
        if ssk is None or not isinstance(devices, dict):
            continue
        for device_id, keys in devices.items():
            if (
                isinstance(keys, dict)
                and keys.get("user_id") == user_id
                and keys.get("device_id") == device_id
                and signed_by(keys, user_id, *ssk)
            ):
                found.add((user_id, device_id))
    return found
