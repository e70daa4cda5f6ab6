"""A log filter that keeps query strings out of the logs.

Request lines (the development server's ``"GET /customers/search/?q=%ED%99%8D… HTTP/1.1" 200``, a library's
"fetching https://…?email=…") carry what people typed into search boxes and forms — names, emails and numbers,
percent-encoded so that the phone and email patterns of ``dangol.core.logging.ScrubPersonalData`` cannot see them.
Paths carry ids only, so the path stays and the query string is replaced by ``?[query]``."""
from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"(/[^\s\"'?#]*)\?[^\s\"'#]+")


def strip_query_strings(text: str) -> str:
    return _QUERY.sub(r"\1?[query]", text)


class StripQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = strip_query_strings(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
