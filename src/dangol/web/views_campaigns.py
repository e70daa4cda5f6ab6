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
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from dangol.campaigns import rules as segment_rules
from dangol.campaigns import segments as segment_services
from dangol.campaigns import selectors
from dangol.campaigns.models import Segment, SegmentKind
from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit
from dangol.core.selectors import units_for
from dangol.customers.selectors import with_list_data

from .panels import nav_link

MEMBERS_PAGE = 25
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
