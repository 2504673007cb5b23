"""The two file storages behind one interface: the data dir and S3-compatible object storage
(moto's server on 127.0.0.1), and the expiry cleanup (service, activity schedule)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from datetime import timedelta

import boto3
import pytest
from sqlalchemy import update

from codetether.core.models import StoredFile
from codetether.files.local import LocalStorage
from codetether.files.naming import workspace_names
from codetether.files.contracts import Attachment
from codetether.files.s3 import PART_SIZE, S3Storage
from codetether.files.schedule import cleanup_schedule_id, ensure_cleanup_schedule
from codetether.files.service import delete_expired
from codetether.files.storage import StoredFileMissing
from codetether.files.wiring import storage_from_settings
from codetether.core.ids import utcnow
from tests.conftest import make_settings

BUCKET = "codetether-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(moto_endpoint, tmp_path, temporal_address, database_url):
    settings = make_settings(
        temporal_address, database_url, tmp_path, files_s3_bucket=BUCKET, files_s3_endpoint_url=moto_endpoint,
        files_s3_region="us-east-1", files_s3_access_key_id="test", files_s3_secret_access_key="test",
    )
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return settings


async def _chunks(data: bytes, size: int = 1024 * 1024):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _read(storage, key: str) -> bytes:
    return b"".join([b async for b in storage.open(key)])


def _objects(storage: S3Storage) -> list[str]:
    answer = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=storage.prefix)
    return [o["Key"] for o in answer.get("Contents", [])]


async def test_s3_round_trip(s3_settings):
    storage = storage_from_settings(s3_settings)
    assert isinstance(storage, S3Storage)
    small = b"a,b\n1,2\n"
    assert await storage.save("usr_1/file_small", _chunks(small)) == len(small)
    assert await _read(storage, "usr_1/file_small") == small
    # Larger than a part: a multipart upload, sent part by part.
    big = os.urandom(PART_SIZE * 2 + 12345)
    assert await storage.save("usr_1/file_big", _chunks(big)) == len(big)
    got = await _read(storage, "usr_1/file_big")
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
    assert {"files/usr_1/file_small", "files/usr_1/file_big"} <= set(_objects(storage))
    await storage.delete("usr_1/file_big")
    await storage.delete("usr_1/file_small")
    with pytest.raises(StoredFileMissing):
        await _read(storage, "usr_1/file_small")
    await storage.close()


async def test_s3_failed_stream_leaves_no_object(s3_settings):
    storage = storage_from_settings(s3_settings)

    async def broken():
        yield os.urandom(PART_SIZE + 1)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await storage.save("usr_2/file_broken", broken())
    assert "files/usr_2/file_broken" not in _objects(storage)
    uploads = storage.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert not [u for u in uploads if u["Key"] == "files/usr_2/file_broken"]


async def test_upload_api_on_s3(s3_settings, temporal_env, db, make_user):
    from tests.conftest import running_stack

    owner = await make_user()
    async with running_stack(s3_settings, temporal_env.client, db, worker=False) as stack:
        r = await stack.http.post("/v1/automation/files", headers=owner.headers, files={"file": ("n.txt", b"hello s3")})
        assert r.status_code == 201, r.text
        file_id = r.json()["file_id"]
        content = await stack.http.get(f"/v1/automation/files/{file_id}/content", headers=owner.headers)
        assert content.content == b"hello s3"
        assert f"files/{owner.user_id}/{file_id}" in _objects(stack.app.state.codetether.storage)
        assert not (s3_settings.data_dir / "files").exists()


async def test_local_failed_stream_leaves_nothing(tmp_path):
    storage = LocalStorage(tmp_path / "files")

    async def broken():
        yield b"x" * 10
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        await storage.save("usr_1/file_a", broken())
    assert [f for _d, _s, names in os.walk(tmp_path) for f in names] == []
    with pytest.raises(ValueError):
        await storage.save("../escape", _chunks(b"x"))


def test_workspace_names_are_safe_and_unique():
    names = workspace_names([
        Attachment(name="report.pdf", content_type="application/pdf"),
        Attachment(name="Report.PDF"),
        Attachment(name="report.pdf.txt"),
        Attachment(name="../../etc/passwd"),
        Attachment(name="über data;rm -rf.csv"),
        Attachment(name="..."),
    ])
    assert names[0] == "attachments/report.pdf"
    assert names[1] == "attachments/Report-2.PDF"
    # The first one's extracted text is attachments/report.pdf.txt: another file may not take it.
    assert names[2] == "attachments/report.pdf-2.txt"
    assert names[3] == "attachments/_.._etc_passwd"
    assert all("/" not in n.removeprefix("attachments/") for n in names)
    assert names[4] == "attachments/uber data_rm -rf.csv"
    assert names[5] == "attachments/file"


async def _expire(db, file_id: str) -> None:
    async with db.write_session() as s:
        await s.execute(update(StoredFile).where(StoredFile.id == file_id).values(expires_at=utcnow() - timedelta(seconds=1)))
        await s.commit()


async def test_expired_files_are_deleted(stack, user):
    ids = []
    for i in range(3):
        r = await stack.http.post("/v1/automation/files", headers=user.headers, files={"file": (f"{i}.txt", b"x" * 10)})
        ids.append(r.json()["file_id"])
    await _expire(stack.db, ids[0])
    # An expired file is gone for its owner at once, before the cleanup runs.
    assert (await stack.http.get(f"/v1/automation/files/{ids[0]}", headers=user.headers)).status_code == 404
    r = await stack.http.post("/v1/automation/tasks", headers=user.headers, json={
        "title": "t", "description": "d", "attachments": [{"file_id": ids[0]}]})
    assert r.status_code == 422 and r.json()["code"] == "file_not_found"

    storage = stack.app.state.codetether.storage
    assert await delete_expired(stack.db, storage) >= 1
    async with stack.db.session() as s:
        assert await s.get(StoredFile, ids[0]) is None
        assert await s.get(StoredFile, ids[1]) is not None
    assert not (stack.settings.data_dir / "files" / user.user_id / ids[0]).exists()
    assert (stack.settings.data_dir / "files" / user.user_id / ids[1]).exists()

    # The schedule the worker creates runs the same cleanup (triggered here instead of waited for).
    await _expire(stack.db, ids[1])
    schedule_id = await ensure_cleanup_schedule(stack.client, stack.settings)
    assert schedule_id == cleanup_schedule_id(stack.settings)
    assert await ensure_cleanup_schedule(stack.client, stack.settings) == schedule_id  # idempotent
    handle = stack.client.get_schedule_handle(schedule_id)
    try:
        await handle.trigger()
        for _ in range(300):
            async with stack.db.session() as s:
                if await s.get(StoredFile, ids[1]) is None:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the scheduled cleanup did not delete the expired file")
        assert not (stack.settings.data_dir / "files" / user.user_id / ids[1]).exists()
        assert (stack.settings.data_dir / "files" / user.user_id / ids[2]).exists()
    finally:
        await handle.delete()
