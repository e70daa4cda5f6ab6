"""Notice versions in the admin: admins publish, nobody edits or deletes a published one."""
from __future__ import annotations

from dangol.core.models import AuditEvent
from dangol.customers.models import NoticeVersion


def test_an_admin_publishes_a_notice_and_cannot_edit_it(client, alice):
    client.force_login(alice)
    response = client.post("/admin/customers/noticeversion/add/", {
        "kind": "marketing", "version": "2026-12", "title": "광고 수신 동의", "purpose": "광고", "items": "휴대전화번호",
        "retention": "철회 시까지", "text": "전문", "effective_from_0": "2026-01-01", "effective_from_1": "00:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    notice = NoticeVersion.objects.get(version="2026-12")
    assert notice.created_by == alice
    assert AuditEvent.objects.filter(action="privacy.notice_publish").exists()
    assert client.post(f"/admin/customers/noticeversion/{notice.pk}/change/", {"title": "바꿈"}).status_code == 403
    assert client.post(f"/admin/customers/noticeversion/{notice.pk}/delete/", {"post": "yes"}).status_code == 403
    NoticeVersion.objects.get(pk=notice.pk, title="광고 수신 동의")


def test_managers_do_not_see_notices_in_the_admin(client, mina):
    client.force_login(mina)
    assert client.get("/admin/customers/noticeversion/").status_code in (302, 403)
