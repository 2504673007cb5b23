"""Input files in S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, Ceph, ...).

boto3's client is thread-safe and blocking, so every call runs in a worker thread. A save streams:
a file smaller than one part is a single ``PutObject``; a larger one is a multipart upload whose
parts are sent as they fill (at most one part is held in memory) and which is aborted if the
stream fails, so a refused upload leaves no object behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from codetether.core.config import Settings
from codetether.files.storage import StoredFileMissing, check_key

# S3's smallest part (except the last) is 5 MiB.
PART_SIZE = 8 * 1024 * 1024
READ_CHUNK = 1024 * 1024


class S3Storage:
    kind = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> "S3Storage":
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.files_s3_endpoint_url,
            region_name=settings.files_s3_region,
            aws_access_key_id=settings.files_s3_access_key_id,
            aws_secret_access_key=settings.files_s3_secret_access_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=20),
        )
        return cls(client, settings.files_s3_bucket or "", settings.files_s3_prefix)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}{key}"

    async def save(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        obj = self._key(key)
        buf = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        size = 0
        try:
            async for chunk in chunks:
                buf += chunk
                size += len(chunk)
                while len(buf) >= PART_SIZE:
                    if upload_id is None:
                        started = await asyncio.to_thread(self.client.create_multipart_upload, Bucket=self.bucket, Key=obj)
                        upload_id = started["UploadId"]
                    part, buf = bytes(buf[:PART_SIZE]), buf[PART_SIZE:]
                    parts.append(await self._part(obj, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=obj, Body=bytes(buf))
                return size
            if buf or not parts:
                parts.append(await self._part(obj, upload_id, len(parts) + 1, bytes(buf)))
            await asyncio.to_thread(
                self.client.complete_multipart_upload, Bucket=self.bucket, Key=obj, UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            return size
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(asyncio.to_thread(self._abort, obj, upload_id))
            raise

    async def _part(self, obj: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        answer = await asyncio.to_thread(
            self.client.upload_part, Bucket=self.bucket, Key=obj, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _abort(self, obj: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=obj, UploadId=upload_id)
        except Exception:  # noqa: BLE001 - a bucket lifecycle rule removes stale uploads
            pass

    async def open(self, key: str) -> AsyncIterator[bytes]:
        obj = self._key(key)
        try:
            answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=obj)
        except self.client.exceptions.NoSuchKey:
            raise StoredFileMissing(key) from None
        body = answer["Body"]
        try:
            while block := await asyncio.to_thread(body.read, READ_CHUNK):
                yield block
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)
