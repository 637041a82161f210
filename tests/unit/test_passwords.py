import pytest

from domain.users.passwords import (
    MIN_PASSWORD_LENGTH,
    generate_password,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)


def test_hash_is_argon2id_and_verifies() -> None:
    password_hash = hash_password("Correct-Horse-9")
    assert password_hash.startswith("$argon2id$")
    assert "Correct-Horse-9" not in password_hash
    assert verify_password(password_hash, "Correct-Horse-9")
    assert not verify_password(password_hash, "correct-horse-9")
    assert not needs_rehash(password_hash)


def test_hashes_are_salted() -> None:
    assert hash_password("Same-Pass-1") != hash_password("Same-Pass-1")


def test_foreign_or_broken_hashes_never_verify() -> None:
    assert not verify_password("not a hash", "whatever")
    assert not verify_password("", "")
    assert needs_rehash("not a hash")


def test_weak_parameters_need_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("Some-Pass-1")
    assert verify_password(weak, "Some-Pass-1")
    assert needs_rehash(weak)


@pytest.mark.parametrize(
    "password", ["Abcdef12", "abcdef1!", "ABCDEF1!", "abcDEF!!", "汉字汉字ab12", "Correct Horse 9"]
)
def test_acceptable_passwords(password: str) -> None:
    assert password_problems(password) == []


def test_short_password_is_named() -> None:
    problems = password_problems("Ab1!")
    assert len(problems) == 1
    assert f"at least {MIN_PASSWORD_LENGTH}" in problems[0]


def test_too_few_character_kinds_is_named_with_what_to_add() -> None:
    problems = password_problems("abcdefgh12")
    assert len(problems) == 1
    assert "2 of the 4" in problems[0]
    assert "uppercase" in problems[0] and "symbol" in problems[0]


def test_every_problem_is_listed() -> None:
    assert len(password_problems("abc")) == 2
    assert len(password_problems("")) == 2
    assert any("at most" in problem for problem in password_problems("Aa1!" * 100))


def test_generated_passwords_pass_the_policy_and_differ() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) == 16
        assert password_problems(password) == []
        assert not set(password) & set("0O1lI")  # nothing that reads ambiguously
    assert len(generate_password(8)) == 8
    with pytest.raises(ValueError):
        generate_password(7)
