"""The RFC 3161 hook: a time-stamp authority (TSA) vouches that some bytes (a checkpoint) existed at a time.

The token is kept as the TSA signed it, for anyone to check later with the TSA's certificate. Here the answer is
only checked to be the one asked for (status, message imprint, nonce); trusting the TSA's signature and
certificate chain is the verifier's business, done with the roots it trusts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx
from cryptography.x509 import ObjectIdentifier
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
SHA256_OID = ObjectIdentifier("2.16.840.1.101.3.4.2.1")
_GRANTED = frozenset({PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS})  # both carry a token


class TimestampError(Exception):
    """No usable time stamp: the TSA was unreachable, refused, or answered something else than asked."""


@dataclass(frozen=True)
class TimestampToken:
    der: bytes  # the TimeStampToken (a CMS SignedData ContentInfo), byte for byte as the TSA sent it
    gen_time: datetime
    serial_number: int
    tsa_url: str


class TimestampAuthority(Protocol):
    def stamp(self, data: bytes) -> TimestampToken: ...


class Rfc3161Authority:
    """A TSA reached over HTTP (RFC 3161 §3.4): a SHA-256 imprint of the data, a nonce, and the TSA certificate."""

    def __init__(self, url: str, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self._client = client

    def stamp(self, data: bytes) -> TimestampToken:
        if not data:
            raise ValueError("there is nothing to time-stamp in empty data")
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        reply = self._post(request.as_bytes())
        try:
            response = decode_timestamp_response(reply)
        except ValueError as exc:
            raise TimestampError(f"TSA {self.url} answered something that is not a TimeStampResp: {exc}") from None
        if response.status not in _GRANTED:
            reason = "; ".join(response.status_string) or "no reason given"
            raise TimestampError(f"TSA {self.url} refused the request: {_status_name(response.status)} ({reason})")
        try:
            info = response.tst_info
            token = response.time_stamp_token()
        except ValueError as exc:
            raise TimestampError(f"TSA {self.url} granted the request but sent no readable token: {exc}") from None
        imprint = info.message_imprint
        if imprint.hash_algorithm != SHA256_OID or imprint.message != hashlib.sha256(data).digest():
            raise TimestampError(f"TSA {self.url} stamped another message imprint than the one sent")
        if info.nonce is None:
            raise TimestampError(f"TSA {self.url} answered without the request's nonce")
        if info.nonce != request.nonce:
            raise TimestampError(f"TSA {self.url} answered with nonce {info.nonce}, not {request.nonce}: a replay?")
        gen_time = info.gen_time if info.gen_time.tzinfo else info.gen_time.replace(tzinfo=UTC)
        return TimestampToken(der=token, gen_time=gen_time, serial_number=info.serial_number, tsa_url=self.url)

    def _post(self, query: bytes) -> bytes:
        headers = {"Content-Type": QUERY_CONTENT_TYPE, "Accept": REPLY_CONTENT_TYPE}
        try:
            if self._client is None:
                with httpx.Client(timeout=self.timeout) as client:
                    response = client.post(self.url, content=query, headers=headers)
            else:
                response = self._client.post(self.url, content=query, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TimestampError(f"TSA {self.url} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code != httpx.codes.OK:
            raise TimestampError(f"TSA {self.url} answered HTTP {response.status_code}")
        return response.content


def _status_name(status: int) -> str:
    try:
        return PKIStatus(status).name
    except ValueError:
        return f"status {status}"
