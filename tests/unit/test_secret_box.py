import pytest

from domain.users.secret_box import SecretUnreadable, derive_key, seal, unseal


def test_a_sealed_secret_opens_only_under_its_key_and_purpose() -> None:
    key = derive_key("server-secret-0123456789abcdef0123", "totp")
    sealed = seal(key, "JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed and sealed != seal(key, "JBSWY3DPEHPK3PXP")  # fresh nonce
    assert unseal(key, sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretUnreadable):
        unseal(derive_key("server-secret-0123456789abcdef0123", "other"), sealed)
    with pytest.raises(SecretUnreadable):
        unseal(key, sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))
    with pytest.raises(SecretUnreadable):
        unseal(key, "JBSWY3DPEHPK3PXP")
