"""Extension points of the staff app for the domain apps' pages (analytics, loyalty…), so that they add a panel to
the customer's 360° page or a link to the top bar without editing the shared views and templates.

A web module registers at import time (every ``web/views_*.py`` is imported by ``web/urls.py``):

    @customer_panel(order=20)
    def points_panel(request, customer):
        return Panel("web/loyalty/_customer_panel.html", {"balance": ...})   # or None to show nothing

    nav_link("web:analytics_dashboard", _("Dashboard"), who=lambda user: user.sees_all_units or user.role == "manager")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from django.urls import reverse


@dataclass
class Panel:
    template: str
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NavLink:
    url_name: str
    label: str
    who: Callable
    testid: str


_panels: list[tuple[int, Callable]] = []
_links: list[NavLink] = []


def customer_panel(order: int = 50):
    def register(function):
        if all(existing is not function for _o, existing in _panels):
            _panels.append((order, function))
            _panels.sort(key=lambda item: item[0])
        return function

    return register


def panels_for(request, customer) -> list[Panel]:
    return [panel for _order, function in _panels if (panel := function(request, customer)) is not None]


def nav_link(url_name: str, label, *, who: Callable = lambda user: True, testid: str = "") -> None:
    if all(link.url_name != url_name for link in _links):
        _links.append(NavLink(url_name, label, who, testid or f"nav-{url_name.split(':')[-1]}"))


def nav_links(request) -> dict:
    """Context processor: the links of the domain apps this user may follow."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": []}
    return {"nav_links": [{"url": reverse(link.url_name), "label": link.label, "testid": link.testid}
                          for link in _links if link.who(user)]}
