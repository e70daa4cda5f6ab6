"""Events in the staff app: the list and a new event (managers), the event page with the invitations and the door
(check-in by the last four digits of a phone or the member card, walk-ins), the report, and the public RSVP page
behind the signed link of the invitation."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dangol.core.audit import Actor
from dangol.core.selectors import units_for
from dangol.customers.selectors import customers_for
from dangol.gatherings import services as gatherings
from dangol.gatherings.models import EventKind, InvitationStatus

from .panels import nav_link

nav_link("web:events", gettext_lazy("Events"), testid="nav-events")


class EventForm(forms.Form):
    unit = forms.ChoiceField(label=gettext_lazy("Business unit"))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=120)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=EventKind.choices)
    starts_at = forms.DateTimeField(label=gettext_lazy("Starts at"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(label=gettext_lazy("Ends at"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    place = forms.CharField(label=gettext_lazy("Place"), max_length=200)
    capacity = forms.IntegerField(label=gettext_lazy("Capacity"), min_value=1, max_value=100_000)
    segment = forms.ChoiceField(label=gettext_lazy("Invited segment"), required=False)
    holdout_pct = forms.IntegerField(label=gettext_lazy("Holdout (%)"), min_value=0, max_value=50, initial=10)

    def __init__(self, *args, user, **kwargs):
        from dangol.campaigns.models import Segment

        super().__init__(*args, **kwargs)
        units = list(units_for(user).order_by("name"))
        self.units = {str(u.pk): u for u in units}
        self.fields["unit"].choices = [(str(u.pk), u.name) for u in units]
        segments = Segment.objects.filter(unit__in=units) if not user.sees_all_units else Segment.objects.all()
        self.segments = {str(s.pk): s for s in segments.order_by("name")[:200]}
        self.fields["segment"].choices = [("", "—")] + [(k, s.name) for k, s in self.segments.items()]


@login_required
@require_http_methods(["GET", "POST"])
def events(request):
    form = EventForm(request.POST or None, user=request.user) if gatherings.may_manage(request.user) else None
    if request.method == "POST":
        if form is None:
            return render(request, "web/partials/forbidden.html", status=403)
        if form.is_valid():
            data = form.cleaned_data
            try:
                event = gatherings.create_event(
                    actor=Actor.from_request(request), unit=form.units.get(data["unit"]), title=data["title"],
                    kind=data["kind"], starts_at=data["starts_at"], ends_at=data["ends_at"], place=data["place"],
                    capacity=data["capacity"], segment=form.segments.get(data["segment"] or ""),
                    holdout_pct=data["holdout_pct"])
            except (ValidationError, PermissionDenied) as exc:
                for message in (exc.messages if isinstance(exc, ValidationError) else [str(exc)]):
                    form.add_error(None, message)
            else:
                return redirect("web:event_detail", event_id=event.pk)
    listed = list(gatherings.events_for(request.user)[:50])
    return render(request, "web/gatherings/events.html", {"events": listed, "form": form},
                  status=400 if form is not None and form.errors else 200)


def _event_or_404(request, event_id: int):
    return get_object_or_404(gatherings.events_for(request.user), pk=event_id)


@login_required
@require_GET
def event_detail(request, event_id: int):
    event = _event_or_404(request, event_id)
    query = request.GET.get("q", "")
    guests, problem = [], None
    if query:
        try:
            guests = gatherings.find_guests(user=request.user, event=event, query=query)
        except ValidationError as exc:
            problem = exc.messages[0]
    context = {"event": event, "seats": gatherings.seats(event), "guests": guests, "query": query, "problem": problem,
               "may_manage": gatherings.may_manage(request.user), "statuses": InvitationStatus}
    if request.htmx and request.GET.get("partial") == "guests":
        return render(request, "web/gatherings/_guests.html", context)
    return render(request, "web/gatherings/event.html", context)


@login_required
@require_POST
def event_invite(request, event_id: int):
    event = _event_or_404(request, event_id)
    try:
        result = gatherings.invite(actor=Actor.from_request(request), event=event,
                                   link_for=lambda token: request.build_absolute_uri(reverse("web:event_rsvp", args=[token])))
    except (ValidationError, PermissionDenied) as exc:
        for message in (exc.messages if isinstance(exc, ValidationError) else [str(exc)]):
            messages.error(request, message)
    else:
        messages.success(request, _("%(n)s invited, %(h)s kept in the holdout.") % {"n": result["invited"], "h": result["holdout"]})
    return redirect("web:event_detail", event_id=event.pk)


@login_required
@require_POST
def event_check_in(request, event_id: int):
    event = _event_or_404(request, event_id)
    customer = None
    if request.POST.get("customer"):
        customer = customers_for(request.user).filter(pk=request.POST.get("customer", "0")).first() if \
            request.POST.get("customer", "").isdigit() else None
        if customer is None:
            raise Http404
    try:
        attendance = gatherings.check_in(actor=Actor.from_request(request), event=event, customer=customer,
                                         guest_name=request.POST.get("guest_name", ""))
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        who = _("the guest") if customer is None else _("the customer")
        messages.success(request, (_("Checked in (walk-in): %(who)s.") if attendance.walk_in else _("Checked in: %(who)s."))
                         % {"who": who})
    return redirect("web:event_detail", event_id=event.pk)


@login_required
@require_POST
def event_survey(request, event_id: int):
    event = _event_or_404(request, event_id)
    try:
        result = gatherings.survey_attendees(actor=Actor.from_request(request), event=event)
    except (ValidationError, PermissionDenied) as exc:
        for message in (exc.messages if isinstance(exc, ValidationError) else [str(exc)]):
            messages.error(request, message)
    else:
        messages.success(request, _("Survey “%(survey)s” sent to %(n)s attendees.") % {"survey": result["survey"].name,
                                                                                     "n": result["invited"]})
    return redirect("web:event_report", event_id=event.pk)


@login_required
@require_GET
def event_report(request, event_id: int):
    event = _event_or_404(request, event_id)
    if not gatherings.may_manage(request.user):
        return render(request, "web/partials/forbidden.html", status=403)
    found = gatherings.report(event)
    labels = {"attended": _("Attended"), "invited_absent": _("Invited, did not come"), "holdout": _("Holdout (not invited)")}
    rows = [{"label": labels[g.key], "g": g,
             "rate": "—" if g.buyer_rate is None else f"{g.buyer_rate * 100:.1f}%",
             "per_customer": "—" if g.revenue_per_customer is None else f"{round(g.revenue_per_customer):,}"} for g in found["groups"]]
    return render(request, "web/gatherings/report.html", {"event": event, "report": found, "rows": rows})


@never_cache
@require_http_methods(["GET", "POST"])
def event_rsvp(request, token: str):
    """The guest's page behind the invitation's link: the event and two buttons. No login; a wrong link is a 404."""
    invitation = gatherings.read_rsvp_token(token)
    if invitation is None or invitation.status == InvitationStatus.HOLDOUT:
        raise Http404
    problem = None
    if request.method == "POST":
        try:
            result = gatherings.rsvp(invitation=invitation, going=request.POST.get("answer") == "yes")
            invitation = result.invitation
        except ValidationError as exc:
            problem = exc.messages[0]
    response = render(request, "web/gatherings/rsvp.html", {"invitation": invitation, "event": invitation.event,
                                                            "problem": problem})
    # same-origin, not no-referrer: with no-referrer the browser sends "Origin: null" with the answer, which the CSRF
    # check refuses; the link's token still never leaves the site.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
