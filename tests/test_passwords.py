"""Password policy matrix (CNIL / NIST SP 800-63B-4) and argon2 rehash (SPEC §4.1)."""

from __future__ import annotations

from typing import Any

import pytest
from test_accounts_helpers import login, post_form, user_row

from idp.core.passwords import common_passwords, make_hasher, password_problems

PERSONAL = ["Camille", "Durand", "camille.durand@example.test"]


@pytest.mark.parametrize(("password", "expected"), [
    ("Tr0mbone-Vert!-Gris", []),  # four classes
    ("Kq7!vZp2#Lm9", []),  # exactly 12, four classes
    ("Ab1!Ab1!Ab1", ["too_short"]),  # 11
    ("qzvkwmyrtpxhbnf", []),  # 15 lower case letters: NIST length rule
    ("Trombone vert 9", []),  # spaces allowed
    ("élan vital du héron", []),  # unicode
    ("Ünïcødé-Pässwörd-9", []),
    ("Kq7!vZp2#Lm9" * 5 + "Wx", []),  # long passwords are fine
    ("".join(chr(0x61 + (i * 7) % 26) + str(i % 10) for i in range(128)), []),  # 256: the maximum
    ("a1B!" * 64 + "z", ["too_long"]),
    ("short", ["too_short"]),
    ("abcdefghijklmn", ["too_short"]),  # 14 without the classes
    ("correcthorsebatterystaple", ["common"]),
    ("motdepasse2024!", ["common"]),  # 15 characters but on the list
    ("password", ["too_short", "common"]),
    ("Camille-Rocks-2024!", ["personal"]),
    ("xx-durand-xx-yy-zz", ["personal"]),
    ("DURAND jolie maison", ["personal"]),  # case-insensitive
    ("camille.durand rules", ["personal"]),
    ("Mon-Portail-Adore-9", ["portal"]),
    ("monportailamoi123456", ["portal"]),
    # zxcvbn's estimate (issue 15 finding 9), with the reason.
    ("123456789012345", ["weak_common", "weak_sequence"]),
    ("passwordpassword", ["weak_repeat"]),
    ("Azerty123456!", ["weak_common"]),
    ("Ab1!Ab1!Ab1!", ["weak_repeat"]),  # 12, four classes, but one motif
    ("abcdefghijklmnq", ["weak_sequence"]),  # 15, but a sequence
    ("x" * 64 + "Y1!", ["weak_repeat"]),
    ("Soleil2024!!!", ["weak_common", "weak_date", "weak_repeat"]),
])
def test_policy_matrix(password: str, expected: list[str]) -> None:
    assert password_problems(password, personal=PERSONAL, portal_name="Portail") == expected


def test_accent_insensitive_name_check() -> None:
    assert password_problems("helene-en-vacances", personal=["Hélène"], portal_name="Portail") == ["personal"]


def test_common_list_is_the_real_one() -> None:
    words = common_passwords()
    assert len(words) > 19000
    assert {"123456", "password", "azerty", "motdepasse"} <= words


@pytest.mark.parametrize(("password", "message"), [
    ("Court1!", "au moins 12 caractères"),
    ("Azerty123456!", "trop facile à deviner : il est fait de mots de passe courants"),
    ("passwordpassword", "il répète les mêmes caractères"),
    ("123456789012345", "suite prévisible"),
    ("correcthorsebatterystaple", "plus courants"),
    ("Camille-Rocks-2024!", "ni votre nom"),
    ("Mon-Portail-Adore-9", "nom du portail"),
    ("a" * 300, "ne doit pas dépasser 256 caractères"),
])
def test_policy_messages_on_change_password(testclient: Any, create_account: Any,
                                            password: str, message: str) -> None:
    from conftest import PASSWORD

    user = create_account(given_name="Camille", family_name="Durand")
    login(testclient, user.email)
    response = post_form(testclient, "/account/password", current=PASSWORD, password=password, confirm=password)
    assert response.status_code == 200
    assert message in response.text


def test_rehash_on_login_when_parameters_change(app: Any, testclient: Any, create_account: Any) -> None:

    user = create_account()
    old_hash = user_row(app, user.email).password_hash
    assert "t=1" in old_hash
    saved = app.extensions["hasher"]
    app.extensions["hasher"] = make_hasher(2, 8, 1)
    try:
        assert login(testclient, user.email).status_code == 302
    finally:
        app.extensions["hasher"] = saved
    new_hash = user_row(app, user.email).password_hash
    assert new_hash != old_hash and "t=2" in new_hash
