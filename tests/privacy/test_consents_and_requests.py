"""Consent evidence (notice versions, required vs optional vs marketing, withdrawal) and data-subject requests with
their ten-day deadline."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Consent, NoticeVersion
from dangol.customers.services import current_consents
from dangol.privacy import selectors, services as privacy
from dangol.privacy.models import DataSubjectRequest, RequestStatus

SEOUL = dt.timezone(dt.timedelta(hours=9))


def test_the_migration_seeds_notices_and_every_new_consent_names_the_one_in_force(make_customer):
    assert {n.kind for n in NoticeVersion.objects.all()} == {"required", "optional", "marketing"}
    customer = make_customer(consents=[("sms", "marketing", True)])
    record = customer.consents.get()
    assert record.kind == "marketing" and record.notice == NoticeVersion.current("marketing")
    assert record.notice.version == "v1" and record.notice.items and record.notice.retention and record.notice.purpose


def test_required_and_optional_consents_are_kept_apart_from_marketing(make_customer, system):
    customer = make_customer(consents=[("sms", "marketing", True)])
    required = privacy.record_consent(actor=system, customer=customer, kind="required", granted=True, source="store",
                                      method="signed paper form")
    assert (required.kind, required.channel, required.purpose) == ("required", "", "required")
    assert required.notice.kind == "required"
    in_force = {(c.kind, c.channel, c.purpose) for c in privacy.consents_in_force(customer)}
    assert in_force == {("required", "", "required"), ("marketing", "sms", "marketing")}
    # Withdrawing the required one leaves the marketing state alone, and the other way round.
    privacy.withdraw_consent(actor=system, customer=customer, kind="marketing", channel="sms", purpose="marketing")
    in_force = {(c.kind, c.channel, c.purpose) for c in privacy.consents_in_force(customer)}
    assert in_force == {("required", "", "required")}
    assert current_consents(customer)[("sms", "marketing")] is False


def test_the_database_refuses_a_consent_whose_kind_and_channel_disagree(make_customer):
    customer = make_customer()
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(customer=customer, kind="required", channel="sms", purpose="required", granted=True,
                               at=timezone.now(), source="store")
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(customer=customer, kind="marketing", channel="", purpose="marketing", granted=True,
                               at=timezone.now(), source="store")


def test_withdrawal_is_one_call_and_is_audited(make_customer, system):
    customer = make_customer(consents=[("kakao", "marketing", True), ("kakao", "night_marketing", True)])
    privacy.withdraw_consent(actor=system, customer=customer, kind="marketing", channel="kakao", purpose="marketing")
    state = current_consents(customer)
    assert state[("kakao", "marketing")] is False and state[("kakao", "night_marketing")] is False  # the night one follows
    assert AuditEvent.objects.filter(action="consent.withdraw", object_id=str(customer.pk)).count() == 2


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "required"}, "consent"),                       # not in force
    ({"kind": "marketing", "channel": "fax"}, "channel"),    # unknown channel
    ({"kind": "gossip"}, "kind"),
    ({"kind": "optional", "channel": "sms"}, "channel"),     # collection consents have no channel
])
def test_a_bad_withdrawal_is_refused_and_writes_nothing(make_customer, system, kwargs, field):
    customer = make_customer()
    before = Consent.objects.count()
    with pytest.raises(ValidationError) as caught:
        privacy.withdraw_consent(actor=system, customer=customer, **kwargs)
    assert field in caught.value.message_dict
    assert Consent.objects.count() == before


def test_a_published_notice_is_never_changed_and_the_newest_in_force_is_used(db, system):
    notice = privacy.publish_notice(actor=system, kind="marketing", version="2026-11", title="광고 동의", purpose="광고",
                                    items="휴대전화번호", retention="철회 시까지", text="전문")
    assert NoticeVersion.current("marketing") == notice
    with pytest.raises(ValidationError) as caught:
        privacy.publish_notice(actor=system, kind="marketing", version="2026-11", title="x", purpose="x", items="x",
                               retention="x", text="x")
    assert "version" in caught.value.message_dict
    with pytest.raises(ValidationError):
        privacy.publish_notice(actor=system, kind="marketing", version="2026-12", title="", purpose="", items="",
                               retention="", text="")


def test_a_request_is_due_ten_days_after_receipt_at_the_end_of_that_day_in_seoul(make_customer, system):
    customer = make_customer()
    received = dt.datetime(2026, 11, 20, 23, 30, tzinfo=SEOUL)
    with timezone.override("Asia/Seoul"):
        dsr = privacy.open_request(actor=system, customer=customer, kind="access", received_at=received)
    due = timezone.localtime(dsr.due_at, SEOUL)
    assert (due.date(), due.hour, due.minute) == (dt.date(2026, 11, 30), 23, 59)
    assert AuditEvent.objects.filter(action="privacy.request_access").exists()


def test_the_board_sorts_open_requests_by_deadline(make_customer, system, alice, bora):
    now = timezone.now()
    late = privacy.open_request(actor=system, customer=make_customer(), kind="access", received_at=now - dt.timedelta(days=12))
    soon = privacy.open_request(actor=system, customer=make_customer(), kind="correction", received_at=now - dt.timedelta(days=8))
    fresh = privacy.open_request(actor=system, customer=make_customer("seoul-hotel"), kind="suspension", received_at=now)
    board = selectors.request_board(alice, now=now)
    assert (board.overdue, board.near_due, board.open) == ([late], [soon], [fresh])
    # bora works at the bakery: the hotel's customer's request is not hers to see
    assert fresh not in selectors.request_board(bora, now=now).open


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "gossip"}, "kind"),
    ({"kind": "access", "received_via": "pigeon"}, "received_via"),
    ({"kind": "access", "details": "x" * 2001}, "details"),
    ({"kind": "access", "received_at": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)}, "received_at"),
    ({"kind": "access", "received_at": dt.datetime(2026, 1, 1)}, "received_at"),  # naive
])
def test_bad_requests_are_refused_with_a_message_per_field(make_customer, system, kwargs, field):
    with pytest.raises(ValidationError) as caught:
        privacy.open_request(actor=system, customer=make_customer(), **kwargs)
    assert field in caught.value.message_dict
    assert not DataSubjectRequest.objects.exists()


def test_one_open_request_of_a_kind_per_customer(make_customer, system):
    customer = make_customer()
    privacy.open_request(actor=system, customer=customer, kind="access")
    with pytest.raises(ValidationError):
        privacy.open_request(actor=system, customer=customer, kind="access")


def test_a_suspension_request_suspends_processing_when_answered(make_customer, alice):
    actor = Actor(user=alice, via="test")
    customer = make_customer()
    dsr = privacy.open_request(actor=actor, customer=customer, kind="suspension")
    privacy.start_request(actor=actor, request=dsr)
    dsr = privacy.complete_request(actor=actor, request=dsr)
    customer.refresh_from_db()
    assert customer.processing_suspended and dsr.status == RequestStatus.DONE and dsr.handled_by == alice
    assert AuditEvent.objects.filter(action="privacy.suspend").exists()
    with pytest.raises(ValidationError):
        privacy.complete_request(actor=actor, request=dsr)  # closed already


def test_a_correction_request_corrects_the_profile_through_the_customer_service(make_customer, alice):
    actor = Actor(user=alice, via="test")
    customer = make_customer(name="김하눌", phone="010-1111-2222")
    dsr = privacy.open_request(actor=actor, customer=customer, kind="correction", details="이름 오타")
    with pytest.raises(ValidationError):
        privacy.apply_correction(actor=actor, request=dsr, phone="not a phone")
    privacy.apply_correction(actor=actor, request=dsr, name="김하늘")
    customer.refresh_from_db()
    assert customer.name == "김하늘" and customer.contacts.get(is_primary=True, kind="phone").value == "+821011112222"
    assert DataSubjectRequest.objects.get(pk=dsr.pk).status == RequestStatus.DONE


def test_a_deletion_request_erases_and_a_refusal_needs_its_reason(make_customer, alice):
    actor = Actor(user=alice, via="test")
    customer = make_customer(name="박서준")
    deletion = privacy.open_request(actor=actor, customer=customer, kind="deletion", details="모두 지워 주세요 박서준")
    privacy.complete_request(actor=actor, request=deletion)
    customer.refresh_from_db()
    deletion.refresh_from_db()
    assert customer.erased_at and customer.name.startswith("삭제된 고객")
    assert deletion.status == "done" and deletion.details == ""  # the request's text named the person

    other = privacy.open_request(actor=actor, customer=make_customer(), kind="access")
    with pytest.raises(ValidationError):
        privacy.refuse_request(actor=actor, request=other, outcome="  ")
    privacy.refuse_request(actor=actor, request=other, outcome="본인 확인이 되지 않았습니다")
    assert DataSubjectRequest.objects.get(pk=other.pk).status == RequestStatus.REFUSED


def test_suspension_and_erasure_are_honoured_by_messaging_and_segments(make_customer, alice):
    """The flags set by the requests, read by the apps that send and target (through their real entry points)."""
    from dangol.campaigns.selectors import reachable_customers
    from dangol.messaging import services as messaging

    actor = Actor(user=alice, via="test")
    suspended = make_customer(name="처리정지", consents=[("sms", "marketing", True)])
    erased = make_customer(name="삭제요청", consents=[("sms", "marketing", True)])
    reachable = set(reachable_customers().values_list("pk", flat=True))
    assert {suspended.pk, erased.pk} <= reachable

    privacy.complete_request(actor=actor, request=privacy.open_request(actor=actor, customer=suspended, kind="suspension"))
    privacy.complete_request(actor=actor, request=privacy.open_request(actor=actor, customer=erased, kind="deletion"))
    reachable = set(reachable_customers().values_list("pk", flat=True))
    assert suspended.pk not in reachable and erased.pk not in reachable
    for customer, reason in ((suspended, "processing_suspended"), (erased, "erased")):
        customer.refresh_from_db()
        message = messaging.send(customer=customer, channel="sms", kind="ad", source="test:privacy", occurrence="1",
                                 body="할인 안내")
        assert (message.status, message.reason) == ("blocked", reason)


def test_requests_follow_a_merge_and_come_back_with_its_undo(make_customer, system, alice):
    from dangol.ingest.merge import merge_customers, unmerge

    survivor, duplicate = make_customer(name="김하늘"), make_customer(name="김하늘")
    dsr = privacy.open_request(actor=system, customer=duplicate, kind="access")
    merge = merge_customers(actor=system, survivor=survivor, merged=duplicate)
    assert DataSubjectRequest.objects.get(pk=dsr.pk).customer_id == survivor.pk
    assert dsr in selectors.request_board(alice).open + selectors.request_board(alice).near_due
    unmerge(actor=system, merge=merge)
    assert DataSubjectRequest.objects.get(pk=dsr.pk).customer_id == duplicate.pk


def test_the_data_migration_gives_older_consents_the_legacy_notice_and_keeps_them_valid(make_customer):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("dangol.customers.migrations.0005_consent_evidence_sensitive_notes")
    customer = make_customer()
    old = Consent.objects.create(customer=customer, channel="email", purpose="marketing", granted=True,
                                 at=timezone.now(), source="store", evidence="2019 paper form v3")
    assert old.notice is None and old.kind == "marketing"  # what rows written before the migration look like
    migration.seed_notices(apps, None)
    migration.seed_notices(apps, None)  # idempotent
    old.refresh_from_db()
    assert old.notice.version == "legacy" and old.evidence == "2019 paper form v3"
    assert NoticeVersion.objects.filter(version="legacy").count() == 1


def test_a_deletion_request_of_a_customer_erased_meanwhile_still_closes(make_customer, alice):
    actor = Actor(user=alice, via="test")
    customer = make_customer()
    dsr = privacy.open_request(actor=actor, customer=customer, kind="deletion")
    privacy.erase_customer(actor=actor, customer=customer)
    assert privacy.complete_request(actor=actor, request=dsr).status == RequestStatus.DONE
    assert AuditEvent.objects.filter(action="privacy.erase", object_id=str(customer.pk)).count() == 1
