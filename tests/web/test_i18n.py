from pathlib import Path

from babel.messages.pofile import read_po
from django.urls import reverse

import dangol

PO = Path(dangol.__file__).parent / "locale" / "ko" / "LC_MESSAGES" / "django.po"


def test_the_korean_catalogue_is_complete_and_not_fuzzy():
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    missing = [m.id for m in catalog if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert missing == [] and fuzzy == []


def test_pages_speak_korean_by_default_and_english_on_request(client, db):
    korean = client.get(reverse("web:login")).content.decode()
    assert "로그인" in korean
    english = client.get(reverse("web:login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Log in" in english
