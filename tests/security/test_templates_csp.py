"""The Content-Security-Policy allows no inline script or style: no template may carry them (the browser would
silently ignore them — a page that looks fine in a test client and broken in Chromium)."""
import re
from pathlib import Path

import dangol

TEMPLATES = sorted(Path(dangol.__file__).parent.glob("**/templates/**/*.html"))
INLINE = [
    (re.compile(r"""\sstyle\s*=\s*["']""", re.I), "style attribute"),
    (re.compile(r"""\son[a-z]+\s*=\s*["']""", re.I), "event handler attribute"),
    (re.compile(r"<style[\s>]", re.I), "<style> element"),
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"""(?:href|src)\s*=\s*["']javascript:""", re.I), "javascript: URL"),
]


def test_there_are_templates_to_check():
    assert len(TEMPLATES) > 50


def test_no_template_has_inline_script_or_style():
    found = []
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(Path(dangol.__file__).parent)}:{line}: {what}")
    assert not found, "\n".join(found)
