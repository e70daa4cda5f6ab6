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
        pictures: dict[int, str] = {}  # image id -> where this batch wrote it
        for m in messages:
            folder = self.folder() / m.channel
            folder.mkdir(parents=True, exist_ok=True)
            name = key_hash(m.idempotency_key)
            data = {"id": m.pk, "key": m.idempotency_key, "channel": m.channel, "type": m.subtype, "kind": m.kind,
                    "to": m.to_address, "subject": m.subject, "body": m.body, "template_code": m.template_code,
                    "variables": m.variables, "written_at": now}
            if m.html:
                data["html"] = m.html
            if m.image_id:
                if m.image_id not in pictures:
                    pictures[m.image_id] = self._picture(m.image_id)
                data["image"] = pictures[m.image_id]
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, folder / f"{name}.json")
            results.append(Result(m.pk, "sent", provider_message_id=f"file:{name}"))
        return results

    def _picture(self, image_id: int) -> str:
        """The MMS picture, written once as outbox/images/<its SHA-256>-<name>; returns that path under outbox/."""
        from ..images import image_bytes

        name, data = image_bytes(image_id)
        folder = self.folder() / "images"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{hashlib.sha256(data).hexdigest()[:20]}-{name}"
        if not target.exists():
            tmp = folder / f".{target.name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return f"images/{target.name}"

    def parse_report(self, request):
        return parse_json_report(request)
