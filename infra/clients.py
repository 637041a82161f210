"""Clients of the real components, built from the settings (one place, so every process agrees)."""

from __future__ import annotations

from urllib.parse import urlparse

from minio import Minio
from temporalio.client import Client

from infra.settings import Settings


def make_minio_client(settings: Settings) -> Minio:
    endpoint = urlparse(settings.effective_s3_endpoint)
    return Minio(
        endpoint.netloc,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        region=settings.s3_region,
        secure=endpoint.scheme == "https",
    )


async def connect_temporal(settings: Settings) -> Client:
    return await Client.connect(settings.effective_temporal_address, namespace=settings.temporal_namespace)
