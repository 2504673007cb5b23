"""Input files end to end (CONTRACT §11): upload, read, download, delete, size limit, another
user's file, and tasks whose demo agent reads an attachment given by file_id or by URL."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import func, select

from codetether.core.models import StoredFile
from tests.conftest import make_settings, running_stack, wait_status
from tests.support.receiver import Receiver, Reply

CSV = b"region,revenue\nnorth,1200\nsouth,3400\nwest,5600\n"
FILES = "/v1/automation/files"
TASKS = "/v1/automation/tasks"


async def upload(http, headers, name="sales.csv", data=CSV, ctype="text/plain"):
    return await http.post(FILES, headers=headers, files={"file": (name, data, ctype)})


def stored_paths(settings) -> list[str]:
    root = settings.data_dir / "files"
    return [os.path.join(d, f) for d, _dirs, names in os.walk(root) for f in names] if root.exists() else []


async def test_upload_read_download_delete(stack, user):
    r = await upload(stack.http, user.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["file_id"].startswith("file_")
    assert r.headers["location"] == f"{FILES}/{body['file_id']}"
    assert body["name"] == "sales.csv" and body["size"] == len(CSV)
    # Sniffed: text by its bytes, CSV by its name; the client's text/plain is not taken.
    assert body["content_type"] == "text/csv"
    assert body["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert body["expires_at"] > body["created_at"]

    meta = await stack.http.get(f"{FILES}/{body['file_id']}", headers=user.headers)
    assert meta.status_code == 200 and meta.json() == body
    content = await stack.http.get(f"{FILES}/{body['file_id']}/content", headers=user.headers)
    assert content.status_code == 200 and content.content == CSV
    assert content.headers["content-type"].startswith("text/csv")
    assert content.headers["content-disposition"].startswith('attachment; filename="sales.csv"')
    assert content.headers["x-content-type-options"] == "nosniff"

    # Stored privately in the data dir: 0600 files in 0700 folders.
    [path] = stored_paths(stack.settings)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    assert os.stat(stack.settings.data_dir / "files").st_mode & 0o777 == 0o700

    gone = await stack.http.delete(f"{FILES}/{body['file_id']}", headers=user.headers)
    assert gone.status_code == 204
    assert (await stack.http.get(f"{FILES}/{body['file_id']}", headers=user.headers)).status_code == 404
    assert stored_paths(stack.settings) == []


async def test_binary_types_are_sniffed_from_the_bytes(stack, user):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(64)
    r = await upload(stack.http, user.headers, name="chart.bin", data=png, ctype="application/pdf")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"
    blob = b"\x00\x01\x02\xff" * 64
    r = await upload(stack.http, user.headers, name="blob", data=blob, ctype="application/x-custom")
    assert r.status_code == 201 and r.json()["content_type"] == "application/x-custom"


async def _file_rows(db, user_id: str) -> int:
    async with db.session() as s:
        return await s.scalar(select(func.count()).select_from(StoredFile).where(StoredFile.user_id == user_id))


async def test_a_30_mib_upload_is_413_and_nothing_is_stored(stack, user):
    big = b"x" * (30 * 1024 * 1024)
    r = await upload(stack.http, user.headers, name="big.bin", data=big)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "file_too_large"

    # Without a Content-Length the limit is enforced while the bytes stream in.
    boundary = "ctboundary"

    async def chunked():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        for _ in range(30):
            yield b"y" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = await stack.http.post(FILES, headers={**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
                              content=chunked())
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "file_too_large"
    assert await _file_rows(stack.db, user.user_id) == 0
    assert stored_paths(stack.settings) == []


async def test_refusals_of_the_upload(stack, user):
    r = await stack.http.post(FILES, headers=user.headers, json={"file": "x"})
    assert r.status_code == 415
    r = await stack.http.post(FILES, headers=user.headers, files={"other": ("a.txt", b"a")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    reader = await stack.http.post(FILES, headers={"Authorization": "Bearer nope"}, files={"file": ("a", b"a")})
    assert reader.status_code == 401


async def test_quota(tmp_path, temporal_env, temporal_address, database_url, db, make_user):
    settings = make_settings(temporal_address, database_url, tmp_path, files_quota_bytes=100 * 1024)
    owner = await make_user()
    async with running_stack(settings, temporal_env.client, db, worker=False) as stack:
        assert (await upload(stack.http, owner.headers, data=b"a" * (60 * 1024))).status_code == 201
        r = await upload(stack.http, owner.headers, data=b"b" * (60 * 1024))
        assert r.status_code == 413 and r.json()["code"] == "file_quota_exceeded"
        assert await _file_rows(db, owner.user_id) == 1
        assert len(stored_paths(settings)) == 1


async def test_another_users_file_is_404_and_422_on_create(stack, user, make_user):
    other = await make_user()
    file_id = (await upload(stack.http, other.headers)).json()["file_id"]
    for method, path in (("GET", f"{FILES}/{file_id}"), ("GET", f"{FILES}/{file_id}/content"),
                         ("DELETE", f"{FILES}/{file_id}")):
        r = await stack.http.request(method, path, headers=user.headers)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "file_not_found"
    r = await stack.http.post(TASKS, headers=user.headers, json={
        "title": "t", "description": "d", "attachments": [{"file_id": file_id}]})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "file_not_found"
    assert r.json()["errors"][0]["field"] == "attachments.0"
    # Still the owner's.
    assert (await stack.http.get(f"{FILES}/{file_id}", headers=other.headers)).status_code == 200


async def test_attachment_rules_on_create(stack, user):
    async def create(attachments):
        return await stack.http.post(TASKS, headers=user.headers, json={"title": "t", "description": "d",
                                                                       "attachments": attachments})

    r = await create([{"url": "ftp://example.com/a.csv"}])
    assert r.status_code == 422 and r.json()["code"] == "invalid_attachment_url"
    r = await create([{"file_id": "file_x", "url": "https://example.com/a"}])
    assert r.status_code == 422
    r = await create([{"url": f"https://example.com/{i}"} for i in range(11)])
    assert r.status_code == 422


async def test_private_attachment_urls_are_refused_without_webhook_allow_private(
    tmp_path, temporal_env, temporal_address, database_url, db, make_user
):
    settings = make_settings(temporal_address, database_url, tmp_path, webhook_allow_private=False)
    owner = await make_user()
    async with running_stack(settings, temporal_env.client, db, worker=False) as stack:
        for url in ("http://127.0.0.1:9/a.csv", "https://127.0.0.1/a.csv", "https://10.0.0.1/a.csv",
                    "https://[::1]/a.csv", "https://user:pw@example.com/a.csv"):
            r = await stack.http.post(TASKS, headers=owner.headers, json={
                "title": "t", "description": "d", "attachments": [{"url": url}]})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["code"] == "invalid_attachment_url"


async def test_demo_agent_reads_an_uploaded_csv(stack, user):
    file_id = (await upload(stack.http, user.headers)).json()["file_id"]
    r = await stack.http.post(TASKS, headers=user.headers, json={
        "title": "Sum the sales", "description": "READ: attachments/sales.csv",
        "attachments": [{"file_id": file_id}]})
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["attachments"] == [{"file_id": file_id, "name": "sales.csv", "size": len(CSV),
                                    "content_type": "text/csv", "sha256": hashlib.sha256(CSV).hexdigest()}]
    done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert "south,3400" in done["result"]
    # The input file is not one of the task's changes.
    assert done["changes"] is None or done["changes"]["files"] == []


async def test_demo_agent_reads_an_attachment_given_by_url(stack, user):
    async with Receiver() as server:
        server.script([Reply(200, {"Content-Type": "text/csv"}, CSV)])
        r = await stack.http.post(TASKS, headers=user.headers, json={
            "title": "Sum the sales", "description": "READ: attachments/q3.csv",
            "attachments": [{"url": server.url, "name": "q3.csv"}]})
        assert r.status_code == 201, r.text
        task = r.json()
        assert task["attachments"][0]["name"] == "q3.csv" and task["attachments"][0]["file_id"] is None
        done = await wait_status(stack.http, task["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert "west,5600" in done["result"]
    [att] = done["attachments"]
    assert att["file_id"].startswith("file_") and att["size"] == len(CSV)
    assert att["sha256"] == hashlib.sha256(CSV).hexdigest() and att["content_type"] == "text/csv"
    # Stored as a file of the user.
    meta = await stack.http.get(f"{FILES}/{att['file_id']}", headers=user.headers)
    assert meta.status_code == 200 and meta.json()["name"] == "q3.csv"


async def test_an_attachment_url_that_fails_fails_the_task(stack, user):
    async with Receiver() as server:
        server.script([Reply(404, {}, b"gone")], default=Reply(404, {}, b"gone"))
        r = await stack.http.post(TASKS, headers=user.headers, json={
            "title": "t", "description": "READ: attachments/x.csv", "attachments": [{"url": server.url}]})
        assert r.status_code == 201, r.text
        done = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "attachment_unavailable"
    assert "404" in done["error"]["message"]


@pytest.mark.parametrize("kind", ["docx", "pdf"])
async def test_demo_agent_reads_the_text_of_a_document(stack, user, kind):
    from tests.files.documents import make_docx, make_pdf

    data = make_docx("Quarterly revenue was 4711 units.") if kind == "docx" else make_pdf("Quarterly revenue was 4711 units.")
    up = await upload(stack.http, user.headers, name=f"report.{kind}", data=data, ctype="application/octet-stream")
    assert up.status_code == 201, up.text
    r = await stack.http.post(TASKS, headers=user.headers, json={
        "title": "Read the report", "description": f"READ: attachments/report.{kind}.txt",
        "attachments": [{"file_id": up.json()["file_id"]}]})
    assert r.status_code == 201, r.text
    done = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert "4711" in done["result"]
