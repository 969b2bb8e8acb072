"""Files in the fake Slack: slack-sdk's ``files_upload_v2`` flow, ``files.info``, ``files.delete``, the file
host that serves ``url_private`` to the bot token only, and agents sharing files in a thread.

Fidelity notes (what the fake copies from Slack on purpose):

* ``files.getUploadURLExternal`` answers an upload URL on this server and a file id; the URL takes the
  bytes as a raw body (what slack-sdk sends) or multipart, and answers ``OK - <length>`` as text/plain.
  ``files.completeUploadExternal`` shares the files: one message carrying them (``files``, the
  ``initial_comment`` as its text) in the channel, or in the thread named by ``thread_ts``.
* A file is no file before its upload is completed: ``files.info``/``files.delete`` of such an id answer
  ``file_not_found`` (Slack discards uploads that are never completed).
* Slack shares asynchronously, and the completion's answer often lacks ``shares`` (node-slack-sdk #1865):
  here it never has them, so a client that needs the share's ``ts`` must ask ``files.info`` — which has it.
* ``files.info``: ``shares.public``/``shares.private`` (by the channel's privacy) map a channel id to its
  shares, ``{ts, thread_ts (a reply's), channel_name, team_id, share_user_id}``, the shape of the example
  in Slack's OpenAPI spec (whose schema for ``shares`` forbids any key: the spec contradicts itself).
* ``url_private`` is ``/files-pri/{team}-{file}/{name}``, ``url_private_download``
  ``/files-pri/{team}-{file}/download/{name}``. With ``Authorization: Bearer <bot token>`` they serve the
  bytes; without it (or with another token) a 302 to the workspace's sign-in page, an HTML page answered
  200 — what a client that follows redirects would keep as the "file". A deleted file answers 404.
* ``files.delete``: only its owner's token may (``cant_delete_file`` otherwise); then ``files.info`` says
  ``file_deleted`` and each message that carried it shows ``{"id", "mode": "tombstone"}`` in its place.
"""

from __future__ import annotations

import copy
import mimetypes
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.fakes.slack_errors import SlackError

JSON = dict[str, Any]

#: the pseudo-method names recorded for the byte upload to an upload URL and for a url_private fetch
UPLOAD = "files.upload.bytes"
DOWNLOAD = "files.private.bytes"


@dataclass
class FileRecord:
    """A file uploaded through files.getUploadURLExternal / upload / files.completeUploadExternal, or one
    an agent shared (``share_file``)."""

    id: str
    name: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    message_ts: str | None = None
    completed: bool = False
    alt_txt: str | None = None
    snippet_type: str | None = None
    #: who uploaded it (None: the bot)
    user: str | None = None
    mimetype: str | None = None
    deleted: bool = False


class FakeSlackFiles:
    """The files part of ``FakeSlack`` (a mixin: it uses the fake's channels, ids, calls and faults)."""

    # provided by FakeSlack
    files: list[FileRecord]
    _pending_files: dict[str, FileRecord]
    base_url: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    app_id: str
    team_id: str
    team_domain: str

    def _file_routes(self, app: web.Application) -> None:
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_get("/files-pri/{team_file}/{rest:.*}", self._handle_private_file)
        app.router.add_get("/", self._handle_sign_in)

    # ------------------------------------------------------------------ for tests

    def file(self, file_id: str) -> FileRecord:
        """A completed file by id (KeyError if there is none)."""
        found = next((f for f in self.files if f.id == file_id), None)
        if found is None:
            raise KeyError(f"no file {file_id}")
        return found

    def share_file(
        self, channel: str, thread_ts: str, user: str, name: str, data: bytes, text: str = "", **file: Any
    ) -> JSON:
        """An agent uploads ``data`` as ``name`` into a thread, as Slack's client does: the file and the
        thread message carrying it (returned; ``files`` hold the file objects an event carries). ``file``:
        fields to change in the event's file objects (``mode="hidden_by_limit"``, ``size=…``)."""
        chan = self._channel({"channel": channel})  # type: ignore[attr-defined]
        root = self._thread_root(chan, thread_ts)  # type: ignore[attr-defined]
        record = FileRecord(
            id=self._new_id("F"),  # type: ignore[attr-defined]
            name=name,
            length=len(data),
            data=data,
            title=name,
            channel=chan.id,
            thread_ts=root["ts"],
            initial_comment=text,
            completed=True,
            user=user,
        )
        self.files.append(record)
        ts = self._next_ts()  # type: ignore[attr-defined]
        record.message_ts = ts
        view = {**self._file_view(record), **file}
        message: JSON = {
            "type": "message",
            "subtype": "file_share",
            "text": text,
            "user": user,
            "team": self.team_id,
            "upload": False,
            "display_as_bot": False,
            "files": [view],
            "ts": ts,
            "thread_ts": root["ts"],
            "parent_user_id": root.get("user"),
        }
        chan.messages[ts] = message
        self._bump()  # type: ignore[attr-defined]
        return copy.deepcopy(message)

    # ------------------------------------------------------------------ views

    def _file_url(self, record: FileRecord, download: bool = False) -> str:
        folder = f"{self.base_url}/files-pri/{self.team_id}-{record.id}/"
        return folder + ("download/" if download else "") + quote(record.name)

    def _file_view(self, record: FileRecord) -> JSON:
        mimetype = record.mimetype or mimetypes.guess_type(record.name)[0] or "application/octet-stream"
        extension = record.name.rsplit(".", 1)[-1].lower() if "." in record.name else ""
        owner = record.user or self.bot_user_id
        return {
            "id": record.id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": record.name,
            "title": record.title or record.name,
            "mimetype": mimetype,
            "filetype": extension or "binary",
            "pretty_type": extension.upper() or "Binary",
            "user": owner,
            "user_team": self.team_id,
            "editable": False,
            "size": len(record.data or b""),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": record.channel is not None and not self._is_private(record.channel),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": self._file_url(record),
            "url_private_download": self._file_url(record, download=True),
            "permalink": f"https://{self.team_domain}.slack.com/files/{owner}/{record.id}/{quote(record.name)}",
            "channels": [record.channel] if record.channel and not self._is_private(record.channel) else [],
            "groups": [record.channel] if record.channel and self._is_private(record.channel) else [],
            "ims": [],
            "comments_count": 0,
            "has_rich_preview": False,
            "is_starred": False,
        }

    def _is_private(self, channel: str) -> bool:
        chan = self._channels.get(channel)  # type: ignore[attr-defined]
        return bool(chan and chan.is_private)

    def _shares(self, record: FileRecord) -> JSON:
        if record.channel is None or record.message_ts is None:
            return {}
        chan = self._channels[record.channel]  # type: ignore[attr-defined]
        entry: JSON = {
            "channel_name": chan.name,
            "team_id": self.team_id,
            "share_user_id": record.user or self.bot_user_id,
            "ts": record.message_ts,
        }
        if record.thread_ts:
            entry["thread_ts"] = record.thread_ts
        return {"private" if chan.is_private else "public": {chan.id: [entry]}}

    def _completed(self, params: JSON) -> FileRecord:
        file_id = str(params.get("file") or "")
        record = next((f for f in self.files if f.id == file_id), None)
        if record is None:
            raise SlackError("file_not_found")
        if record.deleted:
            raise SlackError("file_deleted")
        return record

    # ------------------------------------------------------------------ methods

    def _files_get_upload_url(self, params: JSON) -> JSON:
        filename = self._required(params, "filename")  # type: ignore[attr-defined]
        try:
            length = int(self._required(params, "length"))  # type: ignore[attr-defined]
        except ValueError:
            raise SlackError("invalid_arguments") from None
        file_id = self._new_id("F")  # type: ignore[attr-defined]
        self._pending_files[file_id] = FileRecord(
            id=file_id,
            name=filename,
            length=length,
            alt_txt=params.get("alt_txt"),
            snippet_type=params.get("snippet_type"),
        )
        return {"ok": True, "upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: JSON) -> JSON:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channel_id = params.get("channel_id") or (str(params.get("channels") or "").split(",")[0] or None)
        chan = self._channel({"channel": channel_id}) if channel_id else None  # type: ignore[attr-defined]
        thread_ts = params.get("thread_ts") or None
        if thread_ts and chan is None:
            raise SlackError("invalid_arguments")
        root = self._thread_root(chan, str(thread_ts)) if chan is not None and thread_ts else None  # type: ignore[attr-defined]
        records: list[FileRecord] = []
        for item in files:
            file_id = item.get("id") if isinstance(item, dict) else None
            record = self._pending_files.get(str(file_id))
            if record is None or record.data is None:
                raise SlackError("file_not_found")
            records.append(record)
        for item, record in zip(files, records, strict=True):
            del self._pending_files[record.id]
            record.title = item.get("title") or record.name
            record.channel = chan.id if chan else None
            record.thread_ts = root["ts"] if root else None
            record.initial_comment = params.get("initial_comment")
            record.completed = True
            self.files.append(record)
        views = [self._file_view(record) for record in records]
        if chan is not None:
            # Sharing files posts a message carrying them (in the thread when thread_ts is set).
            ts = self._next_ts()  # type: ignore[attr-defined]
            message: JSON = {
                "type": "message",
                "text": str(params.get("initial_comment") or ""),
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "app_id": self.app_id,
                "team": self.team_id,
                "upload": True,
                "display_as_bot": False,
                "files": copy.deepcopy(views),
                "ts": ts,
            }
            if root is not None:
                message["thread_ts"] = root["ts"]
                message["parent_user_id"] = root.get("user")
            chan.messages[ts] = message
            for record in records:
                record.message_ts = ts
        return {"ok": True, "files": views}

    def _files_info(self, params: JSON) -> JSON:
        record = self._completed(params)
        view = {**self._file_view(record), "shares": self._shares(record)}
        return {"ok": True, "file": view, "comments": [], "response_metadata": {"next_cursor": ""}}

    def _files_delete(self, params: JSON) -> JSON:
        record = self._completed(params)
        if (record.user or self.bot_user_id) != self.bot_user_id:
            raise SlackError("cant_delete_file")
        record.deleted = True
        for chan in self._channels.values():  # type: ignore[attr-defined]
            for message in chan.messages.values():
                if message.get("files"):  # a message without files stays as it was
                    message["files"] = [
                        {"id": f["id"], "mode": "tombstone"} if f.get("id") == record.id else f
                        for f in message["files"]
                    ]
        return {"ok": True}

    # ------------------------------------------------------------------ hosts

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.slack_api import Call

        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field_value = next(iter(form.values()), b"")
            data = field_value.file.read() if hasattr(field_value, "file") else str(field_value).encode()
            encoding = "form"
        else:
            data = await request.read()
            encoding = "raw"
        call = Call(
            method=UPLOAD, params={"file_id": file_id, "length": len(data)}, at=time.monotonic(), encoding=encoding
        )
        self.calls.append(call)  # type: ignore[attr-defined]
        self._bump()  # type: ignore[attr-defined]
        try:
            fault = self._take_fault(UPLOAD, call.params)  # type: ignore[attr-defined]
            if fault is not None:
                call.fault = fault.label
                if fault.kind not in ("accept_then_drop", "accept_then_hold"):
                    return await self._answer_fault(request, call, fault)  # type: ignore[attr-defined,no-any-return]
            record = self._pending_files.get(file_id)
            if record is None:
                call.status = 404
                return web.Response(status=404, text="Not Found", content_type="text/plain")
            record.data = data
            if fault is not None:
                if fault.kind == "accept_then_hold":
                    await self._hold(fault.hold)  # type: ignore[attr-defined]
                return self._drop(request)  # type: ignore[attr-defined,no-any-return]
            call.status = 200
            # The real upload host answers text/plain "OK - <bytes>"; slack-sdk reads it as text.
            return web.Response(text=f"OK - {len(data)}", content_type="text/plain")
        finally:
            self._bump()  # type: ignore[attr-defined]

    async def _handle_private_file(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.slack_api import Call

        team, _, file_id = request.match_info["team_file"].partition("-")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        call = Call(method=DOWNLOAD, params={"file_id": file_id}, at=time.monotonic(), token=token, encoding="raw")
        self.calls.append(call)  # type: ignore[attr-defined]
        try:
            fault = self._take_fault(DOWNLOAD, call.params)  # type: ignore[attr-defined]
            if fault is not None:
                call.fault = fault.label
                return await self._answer_fault(request, call, fault)  # type: ignore[attr-defined,no-any-return]
            if token != self.bot_token:
                call.status = 302
                sign_in = f"{self.base_url}/?redir={quote(request.path_qs, safe='')}"
                return web.Response(status=302, headers={"Location": sign_in})
            record = next((f for f in self.files if f.id == file_id and team == self.team_id), None)
            if record is None or record.deleted or record.data is None:
                call.status = 404
                return web.Response(status=404, text="File not found", content_type="text/plain")
            call.status = 200
            mimetype = self._file_view(record)["mimetype"]
            return web.Response(body=record.data, content_type=mimetype)
        finally:
            self._bump()  # type: ignore[attr-defined]

    async def _handle_sign_in(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=f"<!DOCTYPE html><html><head><title>Sign in | {self.team_domain}</title></head>"
            "<body><form>Sign in to your workspace</form></body></html>",
            content_type="text/html",
        )
