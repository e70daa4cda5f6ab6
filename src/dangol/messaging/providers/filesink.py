"""The zero-service default: every message is written as one JSON file under DANGOL_DATA_DIR/outbox/<channel>/.

The file name is derived from the idempotency key and written atomically (write + rename), so sending the same
message twice leaves one file: this provider honours the key."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import Result, parse_json_report


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class FileSinkProvider:
    name = "file"
    honours_idempotency_key = True

    def folder(self) -> Path:
        return Path(settings.DATA_DIR) / "outbox"

    def send_batch(self, messages, *, batch_key: str = "") -> list[Result]:
        results = []
        now = timezone.now().isoformat()
        for m in messages:
            folder = self.folder() / m.channel
            folder.mkdir(parents=True, exist_ok=True)
            name = key_hash(m.idempotency_key)
            data = {"id": m.pk, "key": m.idempotency_key, "channel": m.channel, "type": m.subtype, "kind": m.kind,
                    "to": m.to_address, "subject": m.subject, "body": m.body, "template_code": m.template_code,
                    "variables": m.variables, "written_at": now}
            if m.html:
                data["html"] = m.html
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, folder / f"{name}.json")
            results.append(Result(m.pk, "sent", provider_message_id=f"file:{name}"))
        return results

    def parse_report(self, request):
        return parse_json_report(request)
