"""Pages of the marketing half: the segment builder (nested AND/OR groups edited with htmx, with a live count),
segment lists, freeze, CSV import and export; campaigns (draft, preview, approval, send, report); automations.

The builder keeps the rule tree in the form itself: every node has a path ("0", "0.1", "0.1.2") and its inputs are
named ``n-<path>-<attribute>``. Each change posts the whole form; the server rebuilds the tree, applies the button's
action (add a rule or a group, remove a node), validates it and answers the builder again with the count."""
from __future__ import annotations

import re
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from dangol.campaigns import automations as automation_services
from dangol.campaigns import results, services, templating
from dangol.campaigns import rules as segment_rules
from dangol.campaigns import segments as segment_services
from dangol.campaigns import selectors
from dangol.campaigns.models import AutomationKind, Campaign, CampaignStatus, OfferKind, Recurrence, Segment, SegmentKind
from dangol.customers.models import Channel
from dangol.messaging import images as mms_images
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.core.selectors import units_for
from dangol.customers.selectors import with_list_data

from .panels import nav_link

MEMBERS_PAGE = 25
REASONS = {
    "night": gettext_lazy("night time: held until 08:00"), "no_consent": gettext_lazy("no consent for this channel"),
    "refused": gettext_lazy("opted out"), "suppressed": gettext_lazy("on the suppression list"),
    "capped": gettext_lazy("too many messages lately"), "processing_suspended": gettext_lazy("processing suspended"),
    "erased": gettext_lazy("erased"), "merged": gettext_lazy("merged record"), "no_address": gettext_lazy("no address"),
    "alimtalk_ad": gettext_lazy("ads cannot go as AlimTalk"),
}
PATH = re.compile(r"^n-(0(?:\.\d{1,2}){0,5})-(kind|op|field|operator|value|days|unit)$")

nav_link("web:campaign_list", gettext_lazy("Campaigns"), testid="nav-campaigns")


def staff_required(view):
    return login_required(view)


def manager_only(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not (request.user.sees_all_units or request.user.role == "manager"):
            return render(request, "web/campaigns/forbidden.html", status=403)
        return view(request, *args, **kwargs)
    return wrapped


def _segment_or_404(user, segment_id: int) -> Segment:
    segment = selectors.segments_for(user).select_related("unit").filter(pk=segment_id).first()
    if segment is None:
        raise Http404
    return segment


def _units(user) -> list[BusinessUnit]:
    return list(units_for(user).order_by("name"))


def _unit_from(request, units) -> BusinessUnit | None:
    raw = request.POST.get("unit") or request.GET.get("unit") or ""
    for unit in units:
        if str(unit.pk) == raw:
            return unit
    if request.user.sees_all_units:
        return None
    return units[0] if units else None


# --- the rule tree in a form -------------------------------------------------------------------------------------------

def tree_from_form(data) -> dict:
    """The raw (unvalidated) tree the form describes. Inputs whose names do not fit the pattern are ignored."""
    nodes: dict[str, dict] = {}
    for key in data.keys():
        match = PATH.match(key)
        if not match:
            continue
        path, attribute = match.groups()
        node = nodes.setdefault(path, {})
        node[attribute] = data.getlist(key) if attribute == "value" else data.get(key, "")
    nodes.setdefault("0", {"kind": "group", "op": "and"})

    def build(path: str) -> dict:
        node = nodes[path]
        if node.get("kind") == "group" or path == "0":
            children = sorted((p for p in nodes if p.rsplit(".", 1)[0] == path and p.count(".") == path.count(".") + 1),
                              key=lambda p: int(p.rsplit(".", 1)[1]))
            return {"op": node.get("op") if node.get("op") in ("and", "or") else "and", "rules": [build(c) for c in children]}
        values = [v for v in node.get("value", []) if v != ""]
        spec = segment_rules.FIELDS.get(node.get("field", ""))
        if spec is not None and node.get("operator") not in spec.operators:
            node["operator"] = spec.operators[0]  # a field just chosen starts with its first condition
        value = values if spec is None or spec.value == "choices" else (values[0] if values else "")
        rule = {"field": node.get("field", ""), "operator": node.get("operator", ""), "value": value}
        if node.get("days"):
            rule["days"] = node["days"]
        if node.get("unit"):
            rule["unit"] = node["unit"]
        return rule

    return build("0")


def _node_at(tree: dict, path: str) -> dict | None:
    node = tree
    for index in path.split(".")[1:]:
        children = node.get("rules", [])
        if not index.isdigit() or int(index) >= len(children):
            return None
        node = children[int(index)]
    return node


def apply_action(tree: dict, action: str) -> dict:
    verb, _sep, path = (action or "").partition(":")
    if verb in ("add-rule", "add-group"):
        group = _node_at(tree, path)
        if group is not None and "rules" in group and path.count(".") < segment_rules.MAX_DEPTH:
            group["rules"].append({"op": "and", "rules": [{"field": "", "operator": "", "value": ""}]} if verb == "add-group"
                                  else {"field": "", "operator": "", "value": ""})
    elif verb == "remove" and "." in path:
        parent = _node_at(tree, path.rsplit(".", 1)[0])
        index = int(path.rsplit(".", 1)[1])
        if parent is not None and index < len(parent.get("rules", [])):
            parent["rules"].pop(index)
    return tree


def _view_node(node: dict, path: str, problems: dict, choices_cache: dict) -> dict:
    if "rules" in node:
        return {"path": path, "group": True, "op": node.get("op", "and"), "depth": path.count("."),
                "can_nest": path.count(".") < segment_rules.MAX_DEPTH - 1,
                "children": [_view_node(c, f"{path}.{i}", problems, choices_cache) for i, c in enumerate(node["rules"])]}
    spec = segment_rules.FIELDS.get(node.get("field", ""))
    value = node.get("value", "")
    view = {"path": path, "group": False, "field": node.get("field", ""), "operator": node.get("operator", ""),
            "days": node.get("days", ""), "unit": node.get("unit", ""), "problem": problems.get(path, ""), "spec": spec}
    if spec is None:
        view["problem"] = ""
        return view
    view["operators"] = [(op, segment_rules.OPERATOR_LABELS[op]) for op in spec.operators]
    if spec.value in ("choices", "consent"):
        if spec.key not in choices_cache:
            choices_cache[spec.key] = [(str(v), label) for v, label in spec.choices()]
        chosen = {str(v) for v in (value if isinstance(value, list) else [value])}
        view["choices"] = [(v, label, v in chosen) for v, label in choices_cache[spec.key]]
        view["multiple"] = spec.value == "choices"
    else:
        view["text"] = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if spec.unit:
        if "__units" not in choices_cache:
            choices_cache["__units"] = segment_rules._unit_choices()
        view["units"] = choices_cache["__units"]
    return view


def field_groups():
    groups: dict = {}
    for spec in segment_rules.FIELDS.values():
        groups.setdefault(str(spec.group), []).append((spec.key, spec.label))
    return list(groups.items())


def builder_context(request, raw_tree: dict, unit: BusinessUnit | None) -> dict:
    problems = segment_rules.Problems()
    count, error = None, ""
    try:
        tree = segment_rules.clean_tree(raw_tree, problems=problems)
        count = selectors.count_matching(tree, unit=unit, user=request.user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    return {"root": _view_node(raw_tree, "0", problems.by_path, {}), "count": count, "builder_error": error,
            "field_groups": field_groups()}


class SegmentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    description = forms.CharField(label=gettext_lazy("Description"), max_length=300, required=False)


# --- segment pages ---------------------------------------------------------------------------------------------------

@staff_required
def segment_list(request):
    segments = selectors.segments_for(request.user).select_related("unit", "created_by")
    return render(request, "web/campaigns/segment_list.html", {"segments": segments})


@staff_required
@require_http_methods(["GET", "POST"])
def segment_builder(request, segment_id: int | None = None):
    """The builder: the full page on GET, the builder fragment on an htmx change, save on POST action=save."""
    segment = _segment_or_404(request.user, segment_id) if segment_id else None
    if segment is not None and segment.kind == SegmentKind.STATIC:
        return redirect("web:segment_detail", segment_id=segment.pk)
    units = _units(request.user)
    if request.method == "GET":
        raw = segment.rules if segment else {"op": "and", "rules": [{"field": "", "operator": "", "value": ""}]}
        unit = segment.unit if segment else (None if request.user.sees_all_units else (units[0] if units else None))
        form = SegmentForm(initial={"name": segment.name, "description": segment.description} if segment else None)
    else:
        raw = apply_action(tree_from_form(request.POST), request.POST.get("action", ""))
        unit = segment.unit if segment else _unit_from(request, units)
        form = SegmentForm(request.POST)
        if request.POST.get("action") == "save":
            if form.is_valid():
                try:
                    actor = Actor.from_request(request)
                    if segment:
                        saved = segment_services.update_segment(actor=actor, segment=segment, tree=raw, **form.cleaned_data)
                    else:
                        saved = segment_services.create_segment(actor=actor, unit=unit, tree=raw, **form.cleaned_data)
                    messages.success(request, _("Segment saved."))
                    return redirect("web:segment_detail", segment_id=saved.pk)
                except ValidationError as exc:
                    form.add_error(None, " ".join(exc.messages))
    context = {"segment": segment, "form": form, "units": units, "unit": unit, "group_choice": request.user.sees_all_units,
               "builder_url": request.path,
               **builder_context(request, raw, unit)}
    if request.htmx and request.POST.get("action") != "save":
        return render(request, "web/campaigns/_builder.html", context)
    return render(request, "web/campaigns/segment_builder.html", context)


@staff_required
def segment_detail(request, segment_id: int):
    segment = _segment_or_404(request.user, segment_id)
    members = with_list_data(selectors.segment_customers(segment, user=request.user).order_by("pk"))
    page = Paginator(members, MEMBERS_PAGE).get_page(request.GET.get("page"))
    return render(request, "web/campaigns/segment_detail.html", {
        "segment": segment, "page": page, "description": segment_rules.describe(segment.rules) if segment.rules else "",
        "exports": segment.exports.select_related("user")[:5],
    })


@staff_required
@require_POST
def segment_freeze(request, segment_id: int):
    segment = _segment_or_404(request.user, segment_id)
    try:
        frozen = segment_services.freeze_segment(actor=Actor.from_request(request), segment=segment)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("web:segment_detail", segment_id=segment.pk)
    messages.success(request, _("Frozen as a static list of %(n)s customers.") % {"n": f"{frozen.member_count:,}"})
    return redirect("web:segment_detail", segment_id=frozen.pk)


@staff_required
@require_POST
def segment_export(request, segment_id: int):
    segment = _segment_or_404(request.user, segment_id)
    try:
        _count, lines = segment_services.export_rows(actor=Actor.from_request(request), segment=segment,
                                                     reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("web:segment_detail", segment_id=segment.pk)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="segment-{segment.pk}-{stamp}.csv"'
    return response


class ImportForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    file = forms.FileField(label=gettext_lazy("CSV of phone numbers"))


@staff_required
@require_http_methods(["GET", "POST"])
def segment_import(request):
    units = _units(request.user)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = segment_services.import_segment(actor=Actor.from_request(request), name=form.cleaned_data["name"],
                                                     unit=_unit_from(request, units), data=form.cleaned_data["file"].read())
        except ValidationError as exc:
            for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, _("%(matched)s customers found; %(unknown)s numbers unknown, %(invalid)s rows "
                                        "without a valid number.") % {"matched": result.matched, "unknown": result.unknown,
                                                                     "invalid": result.invalid})
            return redirect("web:segment_detail", segment_id=result.segment.pk)
    return render(request, "web/campaigns/segment_import.html", {"form": form, "units": units,
                                                                   "group_choice": request.user.sees_all_units})


# --- campaigns ----------------------------------------------------------------------------------------------------------

class CampaignForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    segment = forms.TypedChoiceField(label=gettext_lazy("Segment"), coerce=int)
    unit = forms.TypedChoiceField(label=gettext_lazy("Sent by"), coerce=int, required=False, empty_value=None)
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=Channel.choices, initial=Channel.SMS)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=[("ad", gettext_lazy("Advertising")),
                                                                  ("info", gettext_lazy("Information"))], initial="ad")
    subject_a = forms.CharField(label=gettext_lazy("Subject (email)"), max_length=120, required=False)
    body_a = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 4}),
                             help_text=gettext_lazy("Placeholders: {{ name }}, {{ tier }}, {{ points }}, {{ coupon_code }}, "
                                                    "{{ coupon_value }}, {{ coupon_expires }}, {{ best_product }}, {{ unit }}"))
    body_b = forms.CharField(label=gettext_lazy("Variant B (optional)"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    subject_b = forms.CharField(label=gettext_lazy("Subject of variant B"), max_length=120, required=False)
    share_a = forms.IntegerField(label=gettext_lazy("Share of variant A (%)"), min_value=1, max_value=99, initial=50, required=False)
    holdout_pct = forms.IntegerField(label=gettext_lazy("Holdout (%)"), min_value=0, max_value=90, initial=10)
    offer_kind = forms.ChoiceField(label=gettext_lazy("Offer"), choices=OfferKind.choices, required=False)
    offer_value = forms.IntegerField(label=gettext_lazy("Offer value (percent or KRW)"), min_value=1, required=False)
    offer_valid_days = forms.IntegerField(label=gettext_lazy("Coupon valid for (days)"), min_value=1, max_value=365, initial=14,
                                          required=False)
    offer_units = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Coupon good at"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked: where the campaign is sent from (every unit for a group campaign)."))
    image = forms.FileField(label=gettext_lazy("Picture (MMS)"), required=False,
                            help_text=gettext_lazy("SMS only: a JPEG of at most 300 KB and 1500 × 1440 pixels; the messages go as MMS."),
                            widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg"}))
    send_at = forms.DateTimeField(label=gettext_lazy("Send at (empty: when approved)"), required=False,
                                  widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                                  input_formats=["%Y-%m-%dT%H:%M"])
    recurrence = forms.ChoiceField(label=gettext_lazy("Repeat"), choices=Recurrence.choices, required=False)
    attribution_days = forms.IntegerField(label=gettext_lazy("Attribution window (days)"), min_value=1, max_value=365, initial=14)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.segments = {s.pk: s for s in selectors.segments_for(user)}
        self.units = {u.pk: u for u in units_for(user).order_by("name")}
        self.fields["segment"].choices = [(pk, s.name) for pk, s in self.segments.items()]
        self.fields["unit"].choices = ([("", _("the whole group"))] if user.sees_all_units else []) + \
            [(pk, u.name) for pk, u in self.units.items()]
        self.fields["offer_units"].choices = [(pk, u.name) for pk, u in self.units.items()]


def _campaign_or_404(user, campaign_id: int) -> Campaign:
    campaign = selectors.campaigns_for(user).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404
    return campaign


@staff_required
def campaign_list(request):
    return render(request, "web/campaigns/campaign_list.html", {"campaigns": selectors.campaigns_for(request.user)[:200]})


@staff_required
@require_http_methods(["GET", "POST"])
def campaign_new(request):
    initial = {"segment": request.GET.get("segment")} if request.GET.get("segment") else None
    form = CampaignForm(request.POST or None, request.FILES or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        variants = [services.VariantInput(body=data["body_a"], subject=data["subject_a"], weight=100)]
        if data["body_b"].strip():
            share = data["share_a"] or 50
            variants = [services.VariantInput(body=data["body_a"], subject=data["subject_a"], weight=share),
                        services.VariantInput(body=data["body_b"], subject=data["subject_b"] or data["subject_a"], weight=100 - share)]
        offer = None
        if data["offer_kind"]:
            offer = services.OfferInput(kind=data["offer_kind"], value=data["offer_value"] or 0,
                                        valid_days=data["offer_valid_days"] or 14,
                                        units=tuple(form.units[pk] for pk in data["offer_units"]))
        try:
            with transaction.atomic():  # a campaign refused after its picture was stored keeps neither
                image = None
                if data.get("image"):
                    if data["channel"] != Channel.SMS:
                        raise ValidationError({"image": [_("Only a text message (MMS) carries a picture.")]})
                    image = mms_images.add_upload(actor=Actor.from_request(request), upload=data["image"],
                                                  unit=form.units.get(data["unit"]))
                campaign = services.create_campaign(
                    actor=Actor.from_request(request), name=data["name"], segment=form.segments[data["segment"]],
                    channel=data["channel"], kind=data["kind"], unit=form.units.get(data["unit"]) if data["unit"] else None,
                    variants=variants, holdout_pct=data["holdout_pct"], offer=offer, send_at=data["send_at"],
                    recurrence=data["recurrence"] or "", attribution_days=data["attribution_days"], image=image)
        except ValidationError as exc:
            for field, errors in (exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]):
                for error in errors:
                    form.add_error(field if field in form.fields else ("body_a" if field == "body" else None), error)
        else:
            messages.success(request, _("Campaign drafted. Check the preview, then ask for approval."))
            return redirect("web:campaign_detail", campaign_id=campaign.pk)
    return render(request, "web/campaigns/campaign_form.html", {"form": form, "variables": templating.VARIABLES})


@staff_required
def campaign_detail(request, campaign_id: int):
    campaign = _campaign_or_404(request.user, campaign_id)
    preview = None
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PENDING, CampaignStatus.APPROVED):
        preview = services.preview_campaign(campaign=campaign, user=request.user)
    return render(request, "web/campaigns/campaign_detail.html", {
        "campaign": campaign, "variants": campaign.variants.all(), "preview": preview,
        "may_approve": services.may_approve(request.user), "runs": campaign.runs.all()[:20],
        "reasons": [(REASONS.get(reason, reason), n) for reason, n in
                    sorted((preview or {}).get("compliance", {}).get("by_reason", {}).items()) if reason],
    })


@staff_required
@require_POST
def campaign_action(request, campaign_id: int, action: str):
    campaign = _campaign_or_404(request.user, campaign_id)
    actor = Actor.from_request(request)
    try:
        if action == "submit":
            services.submit_campaign(actor=actor, campaign=campaign)
            messages.success(request, _("Sent for approval."))
        elif action == "approve":
            services.approve_campaign(actor=actor, campaign=campaign)
            messages.success(request, _("Approved. It goes out at its time."))
        elif action == "cancel":
            services.cancel_campaign(actor=actor, campaign=campaign)
            messages.success(request, _("Cancelled."))
        elif action == "send-now":
            # Managers may run an approved, due campaign in the request (the worker does it otherwise).
            if not services.may_approve(request.user):
                raise PermissionDenied(_("Only a manager or an admin approves a campaign."))
            run = services.run_campaign(campaign_id=campaign.pk)
            if run is not None:
                messages.success(request, _("Sent to %(n)s customers (%(h)s held out).") % {"n": run.recipients, "h": run.holdout})
        else:
            raise Http404
    except PermissionDenied as exc:
        return render(request, "web/campaigns/forbidden.html", {"reason": str(exc)}, status=403)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("web:campaign_detail", campaign_id=campaign.pk)


def _bars(result) -> dict:
    """An SVG bar chart of revenue per customer (treated, holdout, each variant) with the 95 % interval of the
    difference drawn on the treated bars."""
    groups = [(g.label if g.label in ("treated", "holdout") else f"{_('variant')} {g.label}", g) for g in
              [result.treated, result.holdout, *result.variants]]
    labels = {"treated": _("Sent"), "holdout": _("Holdout")}
    top = max([g.per_customer for _l, g in groups] + [g.uplift.holdout_mean + g.uplift.high for _l, g in groups if g.uplift] + [1])
    width, row, left = 560, 34, 110
    bars = []
    for i, (label, g) in enumerate(groups):
        w = int((width - left - 90) * g.per_customer / top)
        bar = {"y": 10 + i * row, "w": max(w, 1), "label": labels.get(label, label), "value": f"{g.per_customer:,.0f}원",
               "holdout": g.label == "holdout", "text_x": left + max(w, 1) + 6, "text_y": 10 + i * row + 16}
        if g.uplift and g.label != "holdout":
            scale = (width - left - 90) / top
            bar["ci"] = {"x1": left + int(scale * max(g.uplift.holdout_mean + g.uplift.low, 0)),
                         "x2": left + int(scale * max(g.uplift.holdout_mean + g.uplift.high, 0)), "y": 10 + i * row + 11}
        bars.append(bar)
    return {"width": width, "height": 20 + len(groups) * row, "left": left, "bars": bars}


@staff_required
def campaign_report(request, campaign_id: int):
    campaign = _campaign_or_404(request.user, campaign_id)
    result = results.campaign_results(campaign)
    if request.GET.get("format") == "csv":
        import csv
        import io
        buffer = io.StringIO()
        csv.writer(buffer).writerows(results.results_csv_rows(result) if result else [["no runs yet"]])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-report.csv"'
        return response
    return render(request, "web/campaigns/report.html", {"campaign": campaign, "result": result,
                                                        "chart": _bars(result) if result else None,
                                                        "csv_url": f"{request.path}?format=csv"})


# --- automations --------------------------------------------------------------------------------------------------------

class AutomationForm(forms.Form):
    unit = forms.TypedChoiceField(label=gettext_lazy("Business unit"), coerce=int)
    kind = forms.ChoiceField(label=gettext_lazy("Trigger"), choices=AutomationKind.choices)
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=Channel.choices, initial=Channel.SMS)
    days = forms.IntegerField(label=gettext_lazy("Days"), min_value=0, max_value=365, initial=7)
    body = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 3}))
    holdout_pct = forms.IntegerField(label=gettext_lazy("Holdout (%)"), min_value=0, max_value=90, initial=10)
    offer_kind = forms.ChoiceField(label=gettext_lazy("Offer"), choices=OfferKind.choices, required=False)
    offer_value = forms.IntegerField(label=gettext_lazy("Offer value (percent or KRW)"), min_value=1, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units_for(user).order_by("name")}
        self.fields["unit"].choices = [(pk, u.name) for pk, u in self.units.items()]


@staff_required
@require_http_methods(["GET", "POST"])
def automation_list(request):
    form = AutomationForm(request.POST or None, user=request.user)
    if request.method == "POST":
        if not services.may_approve(request.user):
            return render(request, "web/campaigns/forbidden.html", status=403)
        if form.is_valid():
            data = form.cleaned_data
            offer = services.OfferInput(kind=data["offer_kind"], value=data["offer_value"] or 0) if data["offer_kind"] else None
            try:
                automation_services.save_automation(actor=Actor.from_request(request), unit=form.units[data["unit"]],
                                                    kind=data["kind"], channel=data["channel"], days=data["days"],
                                                    body=data["body"], holdout_pct=data["holdout_pct"], offer=offer)
            except ValidationError as exc:
                form.add_error(None, " ".join(exc.messages))
            else:
                messages.success(request, _("Automation saved."))
                return redirect("web:automation_list")
    return render(request, "web/campaigns/automation_list.html", {
        "automations": selectors.automations_for(request.user), "form": form,
        "may_edit": services.may_approve(request.user)})


@staff_required
def automation_detail(request, automation_id: int):
    automation = selectors.automations_for(request.user).filter(pk=automation_id).first()
    if automation is None:
        raise Http404
    result = results.automation_results(automation)
    recent = automation.sends.order_by("-at")[:50]
    return render(request, "web/campaigns/automation_detail.html", {"automation": automation, "result": result,
                                                                   "chart": _bars(result) if result else None,
                                                                   "recent": recent})
