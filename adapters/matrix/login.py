"""How the bot logs in, keeping one device across restarts.

Every send carries a transaction id derived from the delivery id, and only the same device with the
same txn id gets the same event back (a resend after a crash is then a no-op); the encryption keys
belong to that device too. So a password login is stored and restored, not redone; a refused stored
token is replaced by a new password login that names the same device. A new device is made only on
purpose (:func:`log_in_as_new_device`): when the encryption store lost the old device's keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nio

from adapters.matrix.responses import TOKEN_ERRORS, LoginFailed, describe_response, login_error
from bridge.endpoint import StateStore

log = logging.getLogger(__name__)

DEVICE_NAME = "sitechat-bridge"


@dataclass(frozen=True)
class Credentials:
    user_id: str
    password: str | None
    access_token: str | None
    #: MATRIX_DEVICE_ID: the device of a configured token, or the one a first password login names
    device_id: str | None


async def log_in(client: nio.AsyncClient, state: StateStore, creds: Credentials) -> str:
    """Log the client in (restoring the stored login when it still works); the device id."""
    if creds.access_token:
        _restore(client, creds.user_id, creds.device_id or "", creds.access_token)
        who = await client.whoami()
        if not isinstance(who, nio.WhoamiResponse):
            raise login_error("MATRIX_ACCESS_TOKEN", who)
        if who.user_id != creds.user_id:
            raise LoginFailed(f"MATRIX_ACCESS_TOKEN belongs to {who.user_id}, not MATRIX_USER_ID {creds.user_id}")
        client.device_id = creds.device_id or who.device_id or ""
        return str(client.device_id)
    assert creds.password is not None  # Settings requires one of the two
    stored_user = await state.get("user_id")
    stored_device = await state.get("device_id")
    stored_token = await state.get("access_token")
    if stored_user == creds.user_id and stored_device and stored_token:
        _restore(client, creds.user_id, stored_device, stored_token)
        who = await client.whoami()
        if isinstance(who, nio.WhoamiResponse):
            return stored_device
        if who.status_code not in TOKEN_ERRORS:
            raise login_error("the stored login", who)
        log.warning("Matrix: the stored access token was refused; logging in again on device %s", stored_device)
        client.access_token = ""
        client.device_id = stored_device  # a password login naming the device keeps it
    else:
        client.device_id = creds.device_id or ""
    return await _password_login(client, state, creds)


def _restore(client: nio.AsyncClient, user_id: str, device_id: str, token: str) -> None:
    """nio's ``restore_login`` without opening the encryption store (``session.py`` opens it, after
    the login, once it knows the device is the one the store was made for)."""
    client.user_id = user_id
    client.device_id = device_id
    client.access_token = token


async def log_in_as_new_device(client: nio.AsyncClient, state: StateStore, creds: Credentials) -> str:
    """A password login on a device the homeserver makes anew (kept for later starts); its id. The
    old device is logged out first: its token (and its published keys) must not outlive it."""
    old = client.device_id
    response = await client.logout()
    if not isinstance(response, nio.LogoutResponse):
        log.warning("Matrix: could not log out the old device %s (%s)", old, describe_response(response))
    client.access_token = ""
    client.device_id = ""
    return await _password_login(client, state, creds)


async def _password_login(client: nio.AsyncClient, state: StateStore, creds: Credentials) -> str:
    assert creds.password is not None
    response = await client.login(creds.password, device_name=DEVICE_NAME)
    if not isinstance(response, nio.LoginResponse):
        raise login_error("MATRIX_PASSWORD", response)
    await state.put("user_id", creds.user_id)
    await state.put("device_id", response.device_id)
    await state.put("access_token", response.access_token)
    log.info("Matrix: logged in as %s, device %s (kept for later starts)", creds.user_id, response.device_id)
    return str(response.device_id)
