"""Partner pages through the test client: who may open them, the export page (password and link shown once, the
link downloads the encrypted zip without a login until it expires), the import page, and the consent panel."""
from __future__ import annotations

import io
import re

import pytest
import pyzipper
from django.core.files.uploadedfile import SimpleUploadedFile

from dangol.partners.models import ThirdPartyConsent, Transfer

from tests.helpers import login
from tests.partners.test_sharing import audience, card_company, consent, inbound, outbound  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _english(client, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def test_staff_get_403_and_managers_see_their_agreements(client, bora, mina, outbound, audience):  # noqa: F811
    login(client, bora)
    assert client.get("/partners/").status_code == 403
    assert client.get(f"/partners/agreements/{outbound.pk}/export/").status_code == 403
    login(client, mina)
    page = client.get("/partners/").content.decode()
    assert "Co-branded card" in page and 'data-testid="nav-partners"' in page


def test_the_export_page_shows_password_and_link_once_and_the_link_downloads(client, mina, outbound, audience):  # noqa: F811
    login(client, mina)
    page = client.get(f"/partners/agreements/{outbound.pk}/export/").content.decode()
    assert "1 customer consented to this provision." in page and 'value="email"' not in page
    done = client.post(f"/partners/agreements/{outbound.pk}/export/", {"fields": ["name", "member_number"]})
    html = done.content.decode()
    assert done.status_code == 200 and done["Cache-Control"] == "no-store"
    password = re.search(r'data-testid="export-password">([^<]+)<', html).group(1)
    link = re.search(r'value="(http://testserver/partners/d/[^"]+)"', html).group(1)
    client.logout()
    response = client.get(link.removeprefix("http://testserver"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = pyzipper.AESZipFile(io.BytesIO(b"".join(response.streaming_content)))
    archive.setpassword(password.encode())
    text = archive.read(archive.namelist()[0]).decode("utf-8-sig")
    assert text.splitlines()[0] == "Name,Member number" and "김동의" in text
    assert Transfer.objects.get().downloads == 1
    assert client.get("/partners/d/guessed-token/").status_code == 404


def test_a_forbidden_field_posted_by_hand_is_refused(client, mina, outbound, audience):  # noqa: F811
    login(client, mina)
    response = client.post(f"/partners/agreements/{outbound.pk}/export/", {"fields": ["email"]})
    assert response.status_code == 400 and not Transfer.objects.exists()


def test_the_import_page_imports_a_partner_list(client, mina, inbound):  # noqa: F811
    login(client, mina)
    upload = SimpleUploadedFile("list.csv", "이름,휴대폰,제3자제공동의\n김카드,010-3333-4444,Y\n이거부,010-5555-6666,N\n".encode())
    response = client.post(f"/partners/agreements/{inbound.pk}/import/", {"file": upload})
    html = response.content.decode()
    assert response.status_code == 200 and "Imported: 1 new" in html and "1 row without consent left out." in html
    bad = SimpleUploadedFile("list.csv", "이름,휴대폰\n김카드,010-3333-4444\n".encode())
    response = client.post(f"/partners/agreements/{inbound.pk}/import/", {"file": bad})
    assert response.status_code == 400 and "no consent column" in response.content.decode()


def test_the_360_page_records_a_consent_at_the_counter(client, mina, outbound, make_customer):  # noqa: F811
    kim = make_customer("seoul-hotel")
    login(client, mina)
    page = client.get(f"/customers/{kim.pk}/").content.decode()
    assert 'data-testid="partner-consents"' in page and "not asked" in page
    response = client.post(f"/customers/{kim.pk}/partner-consents/{outbound.pk}/",
                           {"granted": "yes", "method": "counter", "evidence": "tablet #3"})
    assert response.status_code == 302
    saved = ThirdPartyConsent.objects.get()
    assert (saved.granted, saved.method, saved.evidence, saved.recorded_by, saved.notice_version) == (
        True, "counter", "tablet #3", mina, "2026-11")
    assert "agreed" in client.get(f"/customers/{kim.pk}/").content.decode()
