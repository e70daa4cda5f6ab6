"""The API's JSON parser: strict JSON (no NaN/Infinity), and text that can be stored.

JSON may spell lone UTF-16 surrogates (``"\\ud800"``), which no database can store and no client means to send:
refused here, once, as a 400 parse error, instead of a 500 from deep inside a service. (Numbers too large for their
column are left to the serializers' bounds; ``dangol.api.errors`` turns a database overflow into a 400.)
"""
from __future__ import annotations

import json

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _check(value, depth: int = 0) -> None:
    if depth > 32:
        raise ParseError(_("JSON nested too deeply."))
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(_("JSON parse error - text with an unpaired surrogate (\\ud800–\\udfff) cannot be stored."))
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc})
        _check(data)
        return data
