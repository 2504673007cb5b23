"""The one place that chooses where input files are stored; the API's state and the worker call it."""

from __future__ import annotations

from codetether.core.config import Settings
from codetether.files.local import LocalStorage
from codetether.files.storage import FileStorage


def storage_from_settings(settings: Settings) -> FileStorage:
    """S3-compatible storage when a bucket is configured, else the data dir's ``files`` folder."""
    if settings.files_s3_bucket:
        from codetether.files.s3 import S3Storage  # boto3 is imported only when S3 is configured

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.data_dir / "files")
