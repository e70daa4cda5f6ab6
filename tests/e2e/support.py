"""Small helpers of the browser tests: log in through the real form, check the 360 px layout, wait for htmx."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.helpers import PASSWORD


def login(page: Page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    form = page.locator("main form")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_test_id("search-input")).to_be_visible()


def scroll_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def assert_no_horizontal_scroll(page: Page, width: int = 360) -> None:
    page.wait_for_load_state("load")
    actual = scroll_width(page)
    assert actual <= width + 1, f"{page.url} scrolls sideways at {width} px: scrollWidth={actual}; widest: {widest(page, width)}"


def widest(page: Page, width: int) -> list[str]:
    """The innermost elements that stick out on the right, to name the culprit in a failure message."""
    return page.evaluate("""(width) => {
        const out = [];
        for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.right > width + 1 && ![...el.children].some(c => c.getBoundingClientRect().right > width + 1))
                out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + [...el.classList].join('.') : ''} right=${Math.round(r.right)}`);
        }
        return out.slice(0, 8);
    }""", width)


def mark_document(page: Page) -> None:
    """Tag the current document; still_same_document() is then false after any full page load."""
    page.evaluate("window.__e2eMark = 'same-document'")


def still_same_document(page: Page) -> bool:
    return page.evaluate("window.__e2eMark === 'same-document'")


def customer_url(live_server, customer) -> str:
    return f"{live_server.url}/customers/{customer.pk}/"


def open_customer(page: Page, live_server, customer) -> None:
    """The 360° page with its lazily loaded parts in place: the analysis panel's suggestions arrive after the page
    and push what is below them down, so a tap aimed before they land can hit the wrong spot."""
    page.goto(customer_url(live_server, customer))
    expect(page.get_by_test_id("suggestions-loading")).to_have_count(0)
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def detail_url_pattern(live_server) -> re.Pattern:
    return re.compile(re.escape(live_server.url) + r"/customers/(\d+)/$")
