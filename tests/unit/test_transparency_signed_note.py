"""C2SP signed notes and checkpoints, pinned to golang.org/x/mod/sumdb/note's own test vectors."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from domain.transparency.merkle import empty_root
from domain.transparency.signed_note import (
    MAX_SIGNATURES,
    Checkpoint,
    InvalidNote,
    NoteSigner,
    NoteVerifier,
    generate_signer_key,
    key_id,
)

# From note_test.go. (The signer key's tail is "…iUvxdXHKDFz"; it is the seed of PETER_VKEY's public key.)
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

PETER = NoteVerifier.from_verifier_key(PETER_VKEY)
ENOCH = NoteVerifier.from_verifier_key(ENOCH_VKEY)


def with_abcd(signature_line: str) -> str:
    """Go's corrupted signature: four base64 characters spliced into the middle."""
    return signature_line[:60] + "ABCD" + signature_line[60:]


# ----- the Go vectors ---------------------------------------------------------------------------------------------


def test_go_vector_signs_byte_for_byte() -> None:
    signer = NoteSigner.from_signer_key(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert signer.verifier_key() == PETER_VKEY
    assert signer.sign(TEXT) == TEXT + "\n" + PETER_SIG


def test_go_vector_verifies() -> None:
    assert PETER.name == "PeterNeumann" and PETER.key_id == bytes.fromhex("c74f20a3")
    assert PETER.verify(TEXT + "\n" + PETER_SIG) == TEXT


def test_each_key_finds_its_own_signature_and_ignores_the_other() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert PETER.verify(note) == TEXT
    assert ENOCH.verify(note) == TEXT


def test_repeated_and_unknown_signatures_are_tolerated() -> None:
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + with_abcd(ENOCH_SIG)
    assert PETER.verify(note) == TEXT


def test_signature_count_is_limited() -> None:
    assert PETER.verify(TEXT + "\n" + PETER_SIG * MAX_SIGNATURES) == TEXT
    with pytest.raises(InvalidNote, match="101 signatures"):
        PETER.verify(TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1))


def test_key_id_is_the_specs_hash() -> None:
    public_key = base64.b64decode(PETER_VKEY.split("+", 2)[2])[1:]
    assert key_id("PeterNeumann", public_key) == bytes.fromhex("c74f20a3")
    assert key_id("PeterNeumann", public_key) == hashlib.sha256(b"PeterNeumann\n\x01" + public_key).digest()[:4]


# ----- round trips and failures -----------------------------------------------------------------------------------


def test_generated_key_round_trip() -> None:
    signer_key = generate_signer_key("sunshine.example/evidence-log")
    assert re.fullmatch(r"PRIVATE\+KEY\+sunshine\.example/evidence-log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", signer_key)
    signer = NoteSigner.from_signer_key(signer_key)
    verifier = NoteVerifier.from_verifier_key(signer.verifier_key())
    assert verifier.key_id == signer.key_id
    text = "sunshine.example/evidence-log\n3\n" + "A" * 43 + "=\n中文也可以\n"
    assert verifier.verify(signer.sign(text)) == text
    assert "PRIVATE" not in repr(signer) and signer_key.rsplit("+", 1)[1] not in repr(signer)


def test_generated_keys_differ() -> None:
    assert generate_signer_key("a") != generate_signer_key("a")


def test_tampered_text_fails() -> None:
    note = TEXT + "\n" + PETER_SIG
    with pytest.raises(InvalidNote, match="bad signature by PeterNeumann\\+c74f20a3"):
        PETER.verify(note.replace("cryptography", "cryptographY"))
    with pytest.raises(InvalidNote, match="bad signature"):
        PETER.verify("Extra line.\n" + note)


def test_tampered_signature_fails() -> None:
    with pytest.raises(InvalidNote, match="bad signature"):
        PETER.verify(TEXT + "\n" + with_abcd(PETER_SIG))
    corrupted = PETER_SIG.replace("x08go/ZJ", "x08go/ZK")
    with pytest.raises(InvalidNote, match="bad signature"):
        PETER.verify(TEXT + "\n" + corrupted)
    # a bad signature by the key is not outweighed by a good one after it
    with pytest.raises(InvalidNote, match="bad signature"):
        PETER.verify(TEXT + "\n" + corrupted + PETER_SIG)


def test_other_keys_only_fail() -> None:
    with pytest.raises(InvalidNote, match="no signature by PeterNeumann\\+c74f20a3"):
        PETER.verify(TEXT + "\n" + ENOCH_SIG)
    impostor = NoteSigner.from_signer_key(generate_signer_key("PeterNeumann"))
    with pytest.raises(InvalidNote, match="unknown keys only"):
        PETER.verify(impostor.sign(TEXT))
    renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    with pytest.raises(InvalidNote, match="unknown keys only"):
        PETER.verify(TEXT + "\n" + renamed)


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\udcff" + TEXT + "\n" + PETER_SIG,
        TEXT.replace("\n", "\r\n") + "\n" + PETER_SIG,
        TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG.replace("—", "-"),
        TEXT + "\n" + PETER_SIG.replace("— ", "—"),
        TEXT + "\n" + "— PeterNeumann\n",
        TEXT + "\n" + "— PeterNeumann x08g\n",
        TEXT + "\n" + "— PeterNeumann !!!!\n",
        TEXT + "\n" + PETER_SIG.replace("=\n", "\n"),
    ],
)
def test_malformed_notes_fail(note: str) -> None:
    with pytest.raises(InvalidNote, match="malformed note"):
        PETER.verify(note)


def test_text_may_contain_blank_lines() -> None:
    signer = NoteSigner.from_signer_key(PETER_SKEY)
    text = "first\n\nthird\n\n"
    assert PETER.verify(signer.sign(text)) == text


@pytest.mark.parametrize("text", ["no newline", "", "tab\tinside\n", "carriage\r\n"])
def test_sign_refuses_text_that_cannot_be_a_note(text: str) -> None:
    with pytest.raises(ValueError, match="note text"):
        NoteSigner.from_signer_key(PETER_SKEY).sign(text)


# ----- keys -------------------------------------------------------------------------------------------------------


def manglings(key: str) -> list[str]:
    """Go's: every proper substring, and every character bumped by one."""
    cuts = [key[start:end] for start in range(len(key) + 1) for end in range(start + 1, len(key) + 1)]
    bumps = [key[:at] + chr(ord(key[at]) + 1) + key[at + 1 :] for at in range(len(key))]
    return [mangled for mangled in cuts + bumps if mangled != key]


def test_mangled_verifier_keys_fail() -> None:
    for mangled in manglings(PETER_VKEY):
        with pytest.raises(InvalidNote):
            NoteVerifier.from_verifier_key(mangled)


def test_mangled_signer_keys_fail() -> None:
    for mangled in manglings(PETER_SKEY):
        with pytest.raises(InvalidNote):
            NoteSigner.from_signer_key(mangled)


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "key bytes"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "algorithm byte is 65"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "space"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "empty"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "not base64"),
        ("PeterNeumann+c74f20a3", "malformed verifier key"),
    ],
)
def test_bad_verifier_keys_name_the_reason(vkey: str, reason: str) -> None:
    with pytest.raises(InvalidNote, match=reason):
        NoteVerifier.from_verifier_key(vkey)


def test_signer_key_with_another_name_fails() -> None:
    with pytest.raises(InvalidNote, match="does not match"):
        NoteSigner.from_signer_key(PETER_SKEY.replace("PeterNeumann", "PeterNeumanm"))


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0here"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNote, match="key name"):
        generate_signer_key(name)


# ----- checkpoints ------------------------------------------------------------------------------------------------

SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def test_checkpoint_body_and_parse_round_trip() -> None:
    checkpoint = Checkpoint.parse(SPEC_BODY)
    assert checkpoint == Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)
    assert checkpoint.body() == SPEC_BODY
    extended = Checkpoint("sunshine.example/log", 0, empty_root(), ("one extension", "二"))
    assert extended.body().endswith("\none extension\n二\n")
    assert Checkpoint.parse(extended.body()) == extended


def test_signed_checkpoint_end_to_end() -> None:
    signer = NoteSigner.from_signer_key(generate_signer_key("sunshine.example/log"))
    checkpoint = Checkpoint("sunshine.example/log", 1_000_000, ROOT)
    note = signer.sign(checkpoint.body())
    verified = NoteVerifier.from_verifier_key(signer.verifier_key()).verify(note)
    assert Checkpoint.parse(verified) == checkpoint


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (SPEC_BODY[:-1], "end with a newline"),
        ("example.com/log\n5\n", "needs origin, tree size and root hash"),
        ("\n5\n" + SPEC_BODY.split("\n")[2] + "\n", "origin is empty"),
        (SPEC_BODY.replace("20852163", "020852163"), "leading zeroes"),
        (SPEC_BODY.replace("20852163", "-1"), "not a decimal"),
        (SPEC_BODY.replace("20852163", "+5"), "not a decimal"),
        (SPEC_BODY.replace("20852163", " 5"), "not a decimal"),
        (SPEC_BODY.replace("20852163", "٣"), "not a decimal"),
        (SPEC_BODY.replace("20852163", str(2**64)), "2\\^64"),
        (SPEC_BODY.replace("CsUYap", "CsUY*p"), "not base64"),
        (SPEC_BODY.replace("jxq2I=", "jxq2J="), "canonical base64"),
        (
            SPEC_BODY.replace("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", base64.b64encode(ROOT[:31]).decode()),
            "31 bytes",
        ),
        (SPEC_BODY + "\n", "extension line is empty"),
        (SPEC_BODY + "ext\x07\n", "control character"),
    ],
)
def test_malformed_checkpoints_name_the_reason(body: str, reason: str) -> None:
    with pytest.raises(InvalidNote, match=reason):
        Checkpoint.parse(body)


def test_checkpoint_fields_are_checked_on_construction() -> None:
    with pytest.raises(ValueError, match="origin"):
        Checkpoint("two\nlines", 1, ROOT)
    with pytest.raises(ValueError, match="tree size"):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(ValueError, match="root hash is 3 bytes"):
        Checkpoint("o", 1, b"abc")
    with pytest.raises(ValueError, match="extension line is empty"):
        Checkpoint("o", 1, ROOT, ("",))
