"""Events: invite a segment (with a holdout) through the messaging engine, RSVP by a signed link with a waiting list
when full, check in at the door (invited, known walk-ins, guests without a record), and the report: invited, RSVP,
attended, and purchases in the following days by attendees against invited non-attendees and the holdout.

The RSVP takes the event's row lock, so that two answers for the last seat cannot both get it."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, Role
from dangol.core.selectors import units_for
from dangol.customers.models import Customer, Interaction

from .models import Attendance, Event, EventKind, Invitation, InvitationStatus

RSVP_SALT = "dangol.gatherings.rsvp"
MAX_GUEST_NAME = 60


def may_manage(user) -> bool:
    return bool(user is not None and user.is_authenticated and (user.sees_all_units or user.role == Role.MANAGER))


def events_for(user):
    qs = Event.objects.select_related("unit", "segment")
    return qs if user.sees_all_units else qs.filter(unit__in=units_for(user))


@transaction.atomic
def create_event(*, actor: Actor, unit: BusinessUnit | None, title: str, kind: str, starts_at, ends_at, place: str,
                 capacity, segment=None, holdout_pct: int = 10, followup_days: int = 14) -> Event:
    if not may_manage(actor.user) or (unit is not None and not actor.user.sees_all_units
                                      and not units_for(actor.user).filter(pk=unit.pk).exists()):
        raise PermissionDenied(_("Only a manager of the business unit or an admin creates events."))
    errors: dict[str, list[str]] = {}
    title, place = " ".join((title or "").split()), " ".join((place or "").split())
    if not title:
        errors["title"] = [_("Give the event a title.")]
    if not place:
        errors["place"] = [_("Say where the event takes place.")]
    if unit is None:
        errors["unit"] = [_("Choose the business unit.")]
    if kind not in EventKind.values:
        errors["kind"] = [_("Choose the kind of event.")]
    if not starts_at or not ends_at or ends_at <= starts_at:
        errors["ends_at"] = [_("An event ends after it starts.")]
    if type(capacity) is not int or not 1 <= capacity <= 100_000:
        errors["capacity"] = [_("The capacity is a number of guests between 1 and 100,000.")]
    if type(holdout_pct) is not int or not 0 <= holdout_pct <= 50:
        errors["holdout_pct"] = [_("The holdout is between 0 and 50 %.")]
    if segment is not None and unit is not None and segment.unit_id not in (None, unit.pk):
        errors["segment"] = [_("The segment belongs to another business unit.")]
    if errors:
        raise ValidationError(errors)
    event = Event.objects.create(unit=unit, title=title[:120], kind=kind, starts_at=starts_at, ends_at=ends_at,
                                 place=place[:200], capacity=capacity, segment=segment, holdout_pct=holdout_pct,
                                 followup_days=followup_days, created_by=actor.user)
    audit.record(actor=actor, action="gatherings.create", obj=event)
    return event


# --- invitations ---------------------------------------------------------------------------------------------------------

def rsvp_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "e": invitation.event_id}, salt=RSVP_SALT, compress=True)


def read_rsvp_token(token: str) -> Invitation | None:
    try:
        data = signing.loads(token, salt=RSVP_SALT)
    except signing.BadSignature:
        return None
    return Invitation.objects.select_related("event", "event__unit").filter(pk=data.get("i"), event_id=data.get("e")).first()


def _held_out(event: Event, customer_id: int) -> bool:
    """A stable draw per event and customer: the same customer stays in the holdout if the invitations run again."""
    digest = hashlib.sha256(f"{event.pk}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < event.holdout_pct


def segment_customer_ids(event: Event) -> list[int]:
    """The segment's members who are members of the event's unit, not erased, merged or suspended."""
    from dangol.campaigns.models import SegmentKind, SegmentMember
    from dangol.campaigns.rules import compile_tree

    base = Customer.objects.filter(merged_into__isnull=True, erased_at__isnull=True, processing_suspended=False,
                                   memberships__unit_id=event.unit_id)
    segment = event.segment
    if segment.kind == SegmentKind.STATIC:
        base = base.filter(pk__in=SegmentMember.objects.filter(segment=segment).values("customer_id"))
    else:
        base = base.filter(compile_tree(segment.rules or {}))
    return sorted(set(base.values_list("pk", flat=True)))


def invite(*, actor: Actor, event: Event, link_for, channel: str = "sms", now: dt.datetime | None = None) -> dict:
    """Invite the event's segment: a random ``holdout_pct`` share is kept back (not invited: the comparison group),
    the others get the invitation with their own RSVP link through the messaging engine (consent, night-time and
    caps apply there). ``link_for(token) -> absolute URL``. Running it again invites only newcomers to the segment."""
    from dangol.messaging import services as messaging

    if not may_manage(actor.user) and actor.user is not None:
        raise PermissionDenied(_("Only a manager of the business unit or an admin invites."))
    if event.segment_id is None:
        raise ValidationError({"segment": [_("Choose the segment to invite first.")]})
    now = now or timezone.now()
    if event.starts_at <= now:
        raise ValidationError({"event": [_("The event has started: invitations are closed.")]})
    ids = segment_customer_ids(event)
    known = set(Invitation.objects.filter(event=event).values_list("customer_id", flat=True))
    new = [c for c in ids if c not in known]
    rows = [Invitation(event=event, customer_id=c,
                       status=InvitationStatus.HOLDOUT if _held_out(event, c) else InvitationStatus.INVITED) for c in new]
    with transaction.atomic():
        Invitation.objects.bulk_create(rows, batch_size=5000)
        invited = list(Invitation.objects.filter(event=event, customer_id__in=new, status=InvitationStatus.INVITED)
                       .values_list("pk", "customer_id"))
        when = timezone.localtime(event.starts_at).strftime("%Y-%m-%d %H:%M")
        text = _("You are invited: %(title)s, %(when)s, %(place)s. Please answer: %(link)s")
        outcome = messaging.send_bulk(
            rows=[{"customer_id": customer_id,
                   "body": text % {"title": event.title, "when": when, "place": event.place,
                                   "link": link_for(signing.dumps({"i": pk, "e": event.pk}, salt=RSVP_SALT, compress=True))}}
                  for pk, customer_id in invited],
            channel=channel, kind="ad", source=f"event:{event.pk}", occurrence="invite", unit=event.unit, actor=actor,
        ) if invited else {"total": 0}
        Event.objects.filter(pk=event.pk).update(invited_at=now)
        audit.record(actor=actor, action="gatherings.invite", obj=event)
    return {"invited": len(invited), "holdout": len(new) - len(invited), "messages": outcome}


@dataclass
class RsvpResult:
    invitation: Invitation
    promoted: Invitation | None = None  # the first of the waiting list, who got the freed seat


@transaction.atomic
def rsvp(*, invitation: Invitation, going: bool, now: dt.datetime | None = None) -> RsvpResult:
    """The guest's answer by link: going (a seat while there is one, else the waiting list) or not (a seat freed goes
    to the first of the waiting list). Under the event's row lock: the last seat goes to one answer only."""
    now = now or timezone.now()
    event = Event.objects.select_for_update().get(pk=invitation.event_id)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.status == InvitationStatus.HOLDOUT:
        raise ValidationError({"invitation": [_("This invitation does not exist.")]})
    if event.starts_at <= now:
        raise ValidationError({"invitation": [_("The event has started: answers are closed.")]})
    result = RsvpResult(invitation=invitation)
    was_going = invitation.status == InvitationStatus.GOING
    if going:
        if invitation.status in (InvitationStatus.GOING, InvitationStatus.WAITLIST):
            return result  # asked again: nothing changes, the place in the queue is kept
        taken = Invitation.objects.filter(event=event, status=InvitationStatus.GOING).count()
        if taken < event.capacity:
            invitation.status = InvitationStatus.GOING
        else:
            invitation.status, invitation.waitlisted_at = InvitationStatus.WAITLIST, now
    else:
        invitation.status = InvitationStatus.DECLINED
    invitation.responded_at = now
    invitation.save(update_fields=["status", "responded_at", "waitlisted_at"])
    if was_going and not going:
        first = (Invitation.objects.select_for_update().filter(event=event, status=InvitationStatus.WAITLIST)
                 .order_by("waitlisted_at", "id").first())
        if first is not None:
            first.status = InvitationStatus.GOING
            first.save(update_fields=["status"])
            result.promoted = first
            _tell_promoted(event, first)
    return result


def _tell_promoted(event: Event, invitation: Invitation) -> None:
    from dangol.messaging import services as messaging

    customer = Customer.objects.get(pk=invitation.customer_id)
    messaging.send(customer=customer, channel="sms", kind="info", source=f"event:{event.pk}", occurrence="seat",
                   body=_("A seat is free for you: %(title)s, %(place)s. See you there.") % {"title": event.title,
                                                                                            "place": event.place},
                   unit=event.unit)


def seats(event: Event) -> dict:
    counts = dict(Invitation.objects.filter(event=event).order_by().values("status").annotate(n=Count("id"))
                  .values_list("status", "n"))
    return {"capacity": event.capacity, **{status: int(counts.get(status, 0)) for status in InvitationStatus.values},
            "attended": Attendance.objects.filter(event=event).count()}


# --- the door ----------------------------------------------------------------------------------------------------------

@dataclass
class Guest:
    customer: Customer
    invitation: Invitation | None
    checked_in: bool


def find_guests(*, user, event: Event, query: str) -> list[Guest]:
    """Who is at the door: the last four digits of a phone or the member number of the QR code."""
    from dangol.customers.selectors import phone_lookup
    from dangol.loyalty.selectors import find_member

    query = "".join(ch for ch in (query or "") if ch.isdigit())
    if len(query) == 4:
        people = phone_lookup(user=user, last4=query, limit=20)
    elif len(query) == 12:
        member = find_member(query)
        from dangol.customers.selectors import customers_for

        people = [member] if member is not None and customers_for(user).filter(pk=member.pk).exists() else []
    else:
        raise ValidationError({"query": [_("Type the last four digits of the phone, or scan the member card.")]})
    ids = [p.pk for p in people]
    invitations = {i.customer_id: i for i in Invitation.objects.filter(event=event, customer_id__in=ids)}
    present = set(Attendance.objects.filter(event=event, customer_id__in=ids).values_list("customer_id", flat=True))
    return sorted((Guest(p, invitations.get(p.pk), p.pk in present) for p in people),
                  key=lambda g: (g.invitation is None or g.invitation.status != InvitationStatus.GOING, g.customer.pk))


@transaction.atomic
def check_in(*, actor: Actor, event: Event, customer: Customer | None = None, guest_name: str = "",
             now: dt.datetime | None = None) -> Attendance:
    """Check a guest in: an invited customer, a known customer walking in, or (no customer) a guest by name. Once per
    customer; the attendance goes on the customer's timeline."""
    now = now or timezone.now()
    guest_name = " ".join((guest_name or "").split())
    if customer is None and not guest_name:
        raise ValidationError({"guest_name": [_("Give the walk-in guest's name, or find the customer.")]})
    if len(guest_name) > MAX_GUEST_NAME:
        raise ValidationError({"guest_name": [_("A name has at most %(n)s characters.") % {"n": MAX_GUEST_NAME}]})
    if now < event.starts_at - dt.timedelta(hours=12) or now > event.ends_at + dt.timedelta(hours=12):
        raise ValidationError({"event": [_("Check-in is open on the day of the event only.")]})
    invitation = None
    if customer is not None:
        invitation = Invitation.objects.filter(event=event, customer=customer).exclude(status=InvitationStatus.HOLDOUT).first()
        if Attendance.objects.filter(event=event, customer=customer).exists():
            raise ValidationError({"customer": [_("Already checked in.")]})
    walk_in = invitation is None or invitation.status != InvitationStatus.GOING
    try:
        with transaction.atomic():
            attendance = Attendance.objects.create(event=event, customer=customer, invitation=invitation, walk_in=walk_in,
                                                   guest_name="" if customer else guest_name[:MAX_GUEST_NAME], at=now,
                                                   by=actor.user)
    except IntegrityError:
        raise ValidationError({"customer": [_("Already checked in.")]}) from None
    if customer is not None:
        Interaction.objects.create(customer=customer, kind="visit", occurred_at=now, unit=event.unit, created_by=actor.user,
                                   summary=(_("Attended %(title)s") % {"title": event.title})[:300],
                                   ref_type="gatherings.attendance", ref_id=attendance.pk)
        audit.record(actor=actor, action="gatherings.check_in", obj=customer, fields=["attendance"])
    return attendance


# --- after the event ------------------------------------------------------------------------------------------------------

def survey_attendees(*, actor: Actor, event: Event, now: dt.datetime | None = None) -> dict:
    """Send the unit's hand-sent satisfaction survey (Service → Surveys, "sent by hand") to the attendees with a
    customer record, once each (``about`` = the event: asking again sends nothing new)."""
    from dangol.service import services as service
    from dangol.service.models import SurveyTrigger

    if actor.user is not None and not may_manage(actor.user):
        raise PermissionDenied(_("Only a manager of the business unit or an admin sends the survey."))
    now = now or timezone.now()
    if now < event.ends_at:
        raise ValidationError({"event": [_("The survey goes out after the event.")]})
    survey = service.survey_for(SurveyTrigger.MANUAL, event.unit)
    if survey is None:
        raise ValidationError({"survey": [_("No active survey “sent by hand” for this business unit: create one under "
                                            "Service → Surveys.")]})
    attendees = Customer.objects.filter(pk__in=Attendance.objects.filter(event=event, customer__isnull=False)
                                        .values("customer_id"), merged_into__isnull=True, erased_at__isnull=True)
    invited = [service.invite(survey=survey, customer=customer, about=f"event:{event.pk}", unit=event.unit, actor=actor,
                              now=now) for customer in attendees]
    audit.record(actor=actor, action="gatherings.survey", obj=event)
    return {"survey": survey, "invited": len(invited)}


def survey_scores(event: Event) -> dict:
    from django.db.models import Avg

    from dangol.service.models import SurveyInvitation, SurveyResponse

    sent = SurveyInvitation.objects.filter(about=f"event:{event.pk}").count()
    answered = SurveyResponse.objects.filter(invitation__about=f"event:{event.pk}").aggregate(n=Count("id"), avg=Avg("score"))
    return {"sent": sent, "answered": answered["n"], "average": answered["avg"]}


# --- the report ----------------------------------------------------------------------------------------------------------

@dataclass
class GroupFigures:
    key: str
    customers: int
    buyers: int
    revenue: int

    @property
    def buyer_rate(self) -> float | None:
        return self.buyers / self.customers if self.customers else None

    @property
    def revenue_per_customer(self) -> float | None:
        return self.revenue / self.customers if self.customers else None


def report(event: Event) -> dict:
    """Invited, RSVP, attended (and walk-ins), and purchases at the event's unit from its start to ``followup_days``
    later: attendees against invited non-attendees and the holdout. One aggregate query for the purchases."""
    counts = seats(event)
    start, end = event.starts_at, event.starts_at + dt.timedelta(days=event.followup_days)
    adapt = connection.ops.adapt_datetimefield_value
    sql = """
        WITH g AS (
            SELECT a.customer_id AS customer_id, 'attended' AS grp FROM gatherings_attendance a
             WHERE a.event_id = %s AND a.customer_id IS NOT NULL
            UNION
            SELECT i.customer_id, CASE WHEN i.status = 'holdout' THEN 'holdout' ELSE 'invited_absent' END
              FROM gatherings_invitation i
             WHERE i.event_id = %s AND NOT EXISTS (SELECT 1 FROM gatherings_attendance a
                                                    WHERE a.event_id = i.event_id AND a.customer_id = i.customer_id))
        SELECT g.grp, COUNT(*), SUM(CASE WHEN p.revenue IS NULL THEN 0 ELSE 1 END), COALESCE(SUM(p.revenue), 0)
          FROM g LEFT JOIN (SELECT o.customer_id, SUM(o.total) AS revenue FROM sales_order o
                             WHERE o.unit_id = %s AND o.ordered_at >= %s AND o.ordered_at < %s AND o.needs_review = %s
                             GROUP BY o.customer_id HAVING SUM(o.total) > 0) p ON p.customer_id = g.customer_id
         GROUP BY g.grp"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [event.pk, event.pk, event.unit_id, adapt(start), adapt(end), False])
        rows = {grp: GroupFigures(grp, int(n), int(buyers or 0), int(revenue or 0)) for grp, n, buyers, revenue in cursor.fetchall()}
    groups = [rows.get(key, GroupFigures(key, 0, 0, 0)) for key in ("attended", "invited_absent", "holdout")]
    walk_ins = Attendance.objects.filter(event=event, walk_in=True).count()
    return {"counts": counts, "groups": groups, "walk_ins": walk_ins, "window_end": end, "survey": survey_scores(event)}


# --- reactions -------------------------------------------------------------------------------------------------------------

def on_customer_erased(*, customer_id: int, **kwargs) -> None:
    """Nothing personal is kept with a customer's attendance but the link to them; a guest name is only kept for
    guests without a record. Attendances stay (counted), invitations stay (the report's groups)."""
    Attendance.objects.filter(customer_id=customer_id).exclude(guest_name="").update(guest_name="")


def on_customers_merged(*, survivor, merged, merge, moved: dict) -> None:
    """The merged record's invitations and attendances move to the survivor, except for events the survivor already
    has one of (one query when there are none)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 'i', id, event_id FROM {Invitation._meta.db_table} WHERE customer_id = %s UNION ALL "
                       f"SELECT 'a', id, event_id FROM {Attendance._meta.db_table} WHERE customer_id = %s", [merged.pk, merged.pk])
        rows = cursor.fetchall()
    if not rows:
        return
    taken_i = set(Invitation.objects.filter(customer_id=survivor.pk).values_list("event_id", flat=True))
    taken_a = set(Attendance.objects.filter(customer_id=survivor.pk).values_list("event_id", flat=True))
    invitations = sorted(pk for kind, pk, event in rows if kind == "i" and event not in taken_i)
    attendances = sorted(pk for kind, pk, event in rows if kind == "a" and event not in taken_a)
    if invitations:
        Invitation.objects.filter(pk__in=invitations).update(customer_id=survivor.pk)
        moved["gatherings_invitations"] = invitations
    if attendances:
        Attendance.objects.filter(pk__in=attendances).update(customer_id=survivor.pk)
        moved["gatherings_attendances"] = attendances


def on_customers_unmerged(*, survivor, merged, merge, moved: dict) -> None:
    if moved.get("gatherings_invitations"):
        Invitation.objects.filter(pk__in=moved["gatherings_invitations"]).update(customer_id=merged.pk)
    if moved.get("gatherings_attendances"):
        Attendance.objects.filter(pk__in=moved["gatherings_attendances"]).update(customer_id=merged.pk)


def upcoming_for(customer: Customer) -> list[Invitation]:
    return list(Invitation.objects.filter(customer=customer).exclude(status=InvitationStatus.HOLDOUT)
                .select_related("event").filter(Q(event__ends_at__gte=timezone.now())).order_by("event__starts_at")[:5])


def event_kpis(*, unit_ids, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Per event starting in [start, end) at these units (None: all): invited, going, waiting, attended, walk-ins.
    Two aggregate queries whatever the number of events."""
    events = Event.objects.filter(starts_at__gte=start, starts_at__lt=end).select_related("unit").order_by("starts_at")
    if unit_ids is not None:
        events = events.filter(unit_id__in=list(unit_ids))
    events = list(events[:50])
    if not events:
        return []
    statuses: dict[int, dict[str, int]] = {}
    for event_id, status, n in (Invitation.objects.filter(event__in=events).order_by().values("event_id", "status")
                                .annotate(n=Count("id")).values_list("event_id", "status", "n")):
        statuses.setdefault(event_id, {})[status] = n
    attended: dict[int, dict[bool, int]] = {}
    for event_id, walk_in, n in (Attendance.objects.filter(event__in=events).order_by().values("event_id", "walk_in")
                                 .annotate(n=Count("id")).values_list("event_id", "walk_in", "n")):
        attended.setdefault(event_id, {})[walk_in] = n
    out = []
    for event in events:
        s, a = statuses.get(event.pk, {}), attended.get(event.pk, {})
        invited = sum(n for status, n in s.items() if status != InvitationStatus.HOLDOUT)
        out.append({"event": event, "invited": invited, "going": s.get(InvitationStatus.GOING, 0),
                    "waitlist": s.get(InvitationStatus.WAITLIST, 0), "attended": a.get(False, 0) + a.get(True, 0),
                    "walk_ins": a.get(True, 0)})
    return out
