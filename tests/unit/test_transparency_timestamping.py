"""The RFC 3161 client against a fake TSA behind httpx.MockTransport.

rfc3161-client ships no sample responses in its wheel, so the fake TSA here builds real ones: a TSTInfo answering
the request's imprint and nonce, in a CMS SignedData signed (ECDSA P-256) by a throwaway TSA certificate. The
package's own verifier accepts them, so the happy path is exercised on a genuine token, offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import VerifierBuilder, decode_timestamp_response
from rfc3161_client._rust import parse_timestamp_request

from domain.transparency.timestamping import (
    QUERY_CONTENT_TYPE,
    SHA256_OID,
    Rfc3161Authority,
    TimestampAuthority,
    TimestampError,
    TimestampToken,
)

TSA_URL = "https://tsa.example/tsr"
GEN_TIME = datetime(2025, 6, 2, 8, 30, 15, tzinfo=UTC)
SERIAL = 0x5EED_CAFE
DATA = b"sunshine.example/evidence\n42\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

# ----- a minimal DER writer, enough for a TimeStampResp -------------------------------------------------------


def der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def sequence(*parts: bytes) -> bytes:
    return der(0x30, b"".join(parts))


def set_of(*parts: bytes, tag: int = 0x31) -> bytes:
    return der(tag, b"".join(sorted(parts)))  # DER orders a SET OF by encoding


def integer(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return der(0x06, bytes(body))


def octets(value: bytes) -> bytes:
    return der(0x04, value)


def explicit(number: int, inner: bytes) -> bytes:
    return der(0xA0 | number, inner)


SHA256 = sequence(oid(SHA256_OID.dotted_string))
ECDSA_SHA256 = sequence(oid("1.2.840.10045.4.3.2"))
ID_SIGNED_DATA = oid("1.2.840.113549.1.7.2")
ID_CT_TST_INFO = oid("1.2.840.113549.1.9.16.1.4")


@dataclass
class FakeTsa:
    """Answers TimeStampReqs like a TSA would; the knobs make it misbehave."""

    status: int = 0
    imprint_override: bytes | None = None
    nonce_offset: int = 0
    with_nonce: bool = True

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sunshine test TSA")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(GEN_TIME - timedelta(days=1))
            .not_valid_after(GEN_TIME + timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        query = parse_timestamp_request(request.content)
        if self.status not in (0, 1):
            body = sequence(sequence(integer(self.status), sequence(der(0x0C, b"policy not accepted"))))
        else:
            imprint = self.imprint_override or query.message_imprint.message
            nonce = query.nonce + self.nonce_offset if self.with_nonce and query.nonce is not None else None
            body = sequence(sequence(integer(self.status)), self.token(imprint, nonce))
        return httpx.Response(200, content=body, headers={"Content-Type": "application/timestamp-reply"})

    def token(self, imprint: bytes, nonce: int | None) -> bytes:
        tst_info = sequence(
            integer(1),
            oid("1.3.6.1.4.1.99999.1"),
            sequence(SHA256, octets(imprint)),
            integer(SERIAL),
            der(0x18, GEN_TIME.strftime("%Y%m%d%H%M%SZ").encode()),
            *([integer(nonce)] if nonce is not None else []),
        )
        certificate = self.certificate.public_bytes(Encoding.DER)
        attributes = [
            sequence(oid("1.2.840.113549.1.9.3"), set_of(ID_CT_TST_INFO)),
            sequence(oid("1.2.840.113549.1.9.4"), set_of(octets(hashlib.sha256(tst_info).digest()))),
            sequence(  # signingCertificateV2: the ESSCertIDv2 (SHA-256 by default) of the TSA certificate
                oid("1.2.840.113549.1.9.16.2.47"),
                set_of(sequence(sequence(sequence(octets(hashlib.sha256(certificate).digest()))))),
            ),
        ]
        signature = self.key.sign(set_of(*attributes), ec.ECDSA(hashes.SHA256()))
        signer_info = sequence(
            integer(1),
            sequence(self.certificate.issuer.public_bytes(), integer(self.certificate.serial_number)),
            SHA256,
            set_of(*attributes, tag=0xA0),
            ECDSA_SHA256,
            octets(signature),
        )
        signed_data = sequence(
            integer(3),
            set_of(SHA256),
            sequence(ID_CT_TST_INFO, explicit(0, octets(tst_info))),
            explicit(0, certificate),
            set_of(signer_info),
        )
        return sequence(ID_SIGNED_DATA, explicit(0, signed_data))


def authority_for(handler: Callable[[httpx.Request], httpx.Response]) -> Rfc3161Authority:
    return Rfc3161Authority(TSA_URL, timeout=5.0, client=httpx.Client(transport=httpx.MockTransport(handler)))


# ----- the happy path ---------------------------------------------------------------------------------------------


def test_request_is_a_sha256_timestampreq_with_nonce_and_cert_request() -> None:
    tsa = FakeTsa()
    authority_for(tsa.handle).stamp(DATA)
    (sent,) = tsa.requests
    assert sent.method == "POST"
    assert str(sent.url) == TSA_URL
    assert sent.headers["Content-Type"] == QUERY_CONTENT_TYPE
    query = parse_timestamp_request(sent.content)
    assert query.version == 1
    assert query.message_imprint.hash_algorithm == SHA256_OID
    assert query.message_imprint.message == hashlib.sha256(DATA).digest()
    assert query.nonce is not None and query.nonce > 0
    assert query.cert_req is True


def test_granted_token_is_returned_as_signed_and_verifies() -> None:
    tsa = FakeTsa()
    authority: TimestampAuthority = authority_for(tsa.handle)
    token = authority.stamp(DATA)
    assert isinstance(token, TimestampToken)
    assert token.gen_time == GEN_TIME
    assert token.serial_number == SERIAL
    assert token.tsa_url == TSA_URL
    # The token is the whole signed ContentInfo: a verifier holding the TSA root accepts the response around it.
    response = decode_timestamp_response(sequence(sequence(integer(0)), token.der))
    verifier = VerifierBuilder().add_root_certificate(tsa.certificate).build()
    assert verifier.verify_message(response, DATA)


def test_granted_with_modifications_is_granted() -> None:
    assert authority_for(FakeTsa(status=1).handle).stamp(DATA).serial_number == SERIAL


def test_nonces_differ_between_requests() -> None:
    tsa = FakeTsa()
    authority = authority_for(tsa.handle)
    authority.stamp(DATA)
    authority.stamp(DATA)
    first, second = (parse_timestamp_request(request.content).nonce for request in tsa.requests)
    assert first != second


# ----- refusals ---------------------------------------------------------------------------------------------------


def test_http_error_status_is_refused() -> None:
    with pytest.raises(TimestampError, match="HTTP 500"):
        authority_for(lambda request: httpx.Response(500, text="oops")).stamp(DATA)


def test_garbage_body_is_refused() -> None:
    with pytest.raises(TimestampError, match="not a TimeStampResp"):
        authority_for(lambda request: httpx.Response(200, content=b"<html>hello</html>")).stamp(DATA)


def test_unreachable_tsa_is_refused() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TimestampError, match="unreachable: ConnectError"):
        authority_for(refuse).stamp(DATA)


def test_rejection_names_status_and_reason() -> None:
    with pytest.raises(TimestampError, match=r"REJECTION \(policy not accepted\)"):
        authority_for(FakeTsa(status=2).handle).stamp(DATA)


def test_wrong_message_imprint_is_refused() -> None:
    tsa = FakeTsa(imprint_override=hashlib.sha256(b"something else").digest())
    with pytest.raises(TimestampError, match="another message imprint"):
        authority_for(tsa.handle).stamp(DATA)


def test_wrong_nonce_is_refused() -> None:
    with pytest.raises(TimestampError, match="a replay"):
        authority_for(FakeTsa(nonce_offset=1).handle).stamp(DATA)


def test_missing_nonce_is_refused() -> None:
    with pytest.raises(TimestampError, match="without the request's nonce"):
        authority_for(FakeTsa(with_nonce=False).handle).stamp(DATA)


def test_granted_without_a_token_is_refused() -> None:
    granted_alone = sequence(sequence(integer(0)))
    with pytest.raises(TimestampError, match="no readable token"):
        authority_for(lambda request: httpx.Response(200, content=granted_alone)).stamp(DATA)


def test_empty_data_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        authority_for(FakeTsa().handle).stamp(b"")
