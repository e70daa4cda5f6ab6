"""Korean SMS/LMS/MMS, AlimTalk and Kakao brand (friend) messages over an HTTP API in the style of NHN Cloud
(Notification > SMS v3.0, KakaoTalk Bizmessage AlimTalk v2.3 / FriendTalk v2.4).

- Authentication: ``X-Secret-Key`` header; app keys in the path; everything from settings.MESSAGING_NHN (env).
- Personalised texts in one request: the request body is ``##m##`` and each recipient carries its own text in
  ``templateParameter`` (NHN's per-recipient substitution), so a batch of 200 different texts is one request.
- Each recipient's ``recipientGroupingKey`` is our message id; each request carries ``X-Idempotency-Key``
  (claim token + group), and a batch is always resent whole under the same key, so the provider can drop a repeat.
- MMS: the picture is uploaded first (``attachfile/binaryUpload``, base64 JPEG) and its file id sent in
  ``attachFileIdList``; a worker reuses the id for an hour.
- AlimTalk recipients that fail (not a KakaoTalk user, template mismatch…) are sent again at once as SMS/LMS with
  the same text (and NHN's own ``resendParameter`` asks it to fall back for failures it only learns later).
"""
from __future__ import annotations

from collections import defaultdict

import requests
from django.conf import settings

from . import ProviderUnavailable, Result, parse_json_report


class NhnProvider:
    name = "nhn"
    honours_idempotency_key = True

    def __init__(self):
        self.session = requests.Session()
        self.files: dict[tuple, tuple[str, float]] = {}  # (gateway, picture's SHA-256) -> (its file id, when uploaded)

    @property
    def conf(self) -> dict:
        return settings.MESSAGING_NHN

    def _post(self, url: str, payload: dict, key: str) -> dict:
        headers = {"X-Secret-Key": self.conf["SECRET_KEY"], "X-Idempotency-Key": key, "Content-Type": "application/json;charset=UTF-8"}
        try:
            response = self.session.post(url, json=payload, headers=headers, timeout=(3, self.conf["TIMEOUT"]))
        except requests.ConnectionError as exc:
            # Only a connection never made is safe to retry as "nothing accepted"; a connection dropped after the
            # request was written (aborted, reset) may have been accepted.
            if isinstance(exc, requests.exceptions.ConnectTimeout) or "NewConnectionError" in repr(exc) or "refused" in str(exc):
                raise ProviderUnavailable(str(exc)) from exc
            raise
        if response.status_code == 429 or response.status_code >= 500:
            raise RuntimeError(f"provider answered {response.status_code}")  # maybe accepted: uncertain
        if response.status_code >= 400:
            raise ProviderUnavailable(f"provider refused the request ({response.status_code}): {response.text[:200]}")
        return response.json()

    def send_batch(self, messages, *, batch_key: str = "") -> list[Result]:
        from ..senders import sender_for

        groups = defaultdict(list)
        for m in messages:
            groups[(m.subtype, m.kind, m.template_code, m.unit_id, m.image_id)].append(m)
        results: list[Result] = []
        for (subtype, kind, template_code, _unit, image_id), group in sorted(groups.items(), key=lambda g: str(g[0])):
            key = f"{batch_key or 'batch'}:{subtype}:{kind}:{template_code}" + (f":{image_id}" if image_id else "")
            sender = sender_for(group[0].unit)
            if subtype == "alimtalk":
                results += self._alimtalk(group, key, sender, template_code)
            elif subtype == "brand":
                results += self._friendtalk(group, key)
            else:
                results += self._sms(group, key, sender, subtype, kind)
        return results

    def _sms(self, group, key, sender, subtype, kind) -> list[Result]:
        path = {"sms": "sms", "lms": "mms", "mms": "mms"}[subtype]
        if kind == "ad":
            path = "ad-" + path
        payload = {"body": "##m##", "sendNo": sender.sms_from,
                   "recipientList": [{"recipientNo": _local(m.to_address), "recipientGroupingKey": str(m.pk),
                                      "templateParameter": {"m": m.body, "t": m.subject}} for m in group]}
        if path.endswith("mms"):
            payload["title"] = "##t##"
        if subtype == "mms" and group[0].image_id:
            payload["attachFileIdList"] = [self._upload(group[0].image_id)]
        url = f"{self.conf['SMS_URL']}/sms/v3.0/appKeys/{self.conf['SMS_APP_KEY']}/sender/{path}"
        data = self._post(url, payload, key)
        request_id = ((data.get("body") or {}).get("data") or {}).get("requestId", "")
        rows = ((data.get("body") or {}).get("data") or {}).get("sendResultList") or []
        return _results(group, rows, request_id, data)

    def _upload(self, image_id: int) -> str:
        """The gateway's file id of an MMS picture, uploaded once per hour per worker (gateways keep files for days)."""
        import base64
        import time

        from ..images import image_bytes
        from ..models import MessageImage

        url = f"{self.conf['SMS_URL']}/sms/v3.0/appKeys/{self.conf['SMS_APP_KEY']}/attachfile/binaryUpload"
        cache_key = (url, MessageImage.objects.filter(pk=image_id).values_list("sha256", flat=True).get())
        cached = self.files.get(cache_key)
        if cached and time.monotonic() - cached[1] < 3600:
            return cached[0]
        name, data = image_bytes(image_id)
        answer = self._post(url, {"fileName": name, "createUser": "dangol", "fileBody": base64.b64encode(data).decode()},
                            key=f"upload:{image_id}")
        file_id = ((answer.get("body") or {}).get("data") or {}).get("fileId")
        if not (answer.get("header") or {}).get("isSuccessful", True) or not file_id:
            # Nothing was sent: the whole group waits and is tried again.
            raise ProviderUnavailable(f"the gateway refused the picture: {(answer.get('header') or {}).get('resultMessage', '')}")
        self.files[cache_key] = (str(file_id), time.monotonic())
        return str(file_id)

    def _alimtalk(self, group, key, sender, template_code) -> list[Result]:
        payload = {"senderKey": self.conf["KAKAO_SENDER_KEY"], "templateCode": template_code,
                   "recipientList": [{"recipientNo": _local(m.to_address), "recipientGroupingKey": str(m.pk),
                                      "templateParameter": m.variables or {},
                                      "resendParameter": {"isResend": True, "resendType": "LMS" if len(m.body.encode("cp949", "replace")) > 90 else "SMS",
                                                          "resendContent": m.body, "resendSendNo": sender.sms_from}} for m in group]}
        url = f"{self.conf['ALIMTALK_URL']}/alimtalk/v2.3/appkeys/{self.conf['ALIMTALK_APP_KEY']}/messages"
        data = self._post(url, payload, key)
        message = data.get("message") or {}
        results = _results(group, message.get("sendResults") or [], message.get("requestId", ""), data)
        failed = {r.message_id for r in results if r.outcome == "failed"}
        if not failed:
            return results
        # Fallback: the same text by SMS/LMS, at once, for the recipients AlimTalk refused.
        from ..text import SMS_MAX_BYTES, byte_length, unencodable_characters

        fallback = [m for m in group if m.pk in failed and not unencodable_characters(m.body)]
        by_type = defaultdict(list)
        for m in fallback:
            by_type["sms" if byte_length(m.body) <= SMS_MAX_BYTES else "lms"].append(m)
        replaced = {}
        for subtype, ms in by_type.items():
            for r in self._sms(ms, f"{key}:fallback:{subtype}", sender, subtype, "info"):
                if r.outcome == "sent":
                    r.provider_message_id = "sms-fallback:" + r.provider_message_id
                    r.detail = "AlimTalk failed; sent by SMS"
                replaced[r.message_id] = r
        return [replaced.get(r.message_id, r) for r in results]

    def _friendtalk(self, group, key) -> list[Result]:
        payload = {"senderKey": self.conf["KAKAO_SENDER_KEY"],
                   "recipientList": [{"recipientNo": _local(m.to_address), "content": m.body, "isAd": m.kind == "ad",
                                      "recipientGroupingKey": str(m.pk)} for m in group]}
        url = f"{self.conf['ALIMTALK_URL']}/friendtalk/v2.4/appkeys/{self.conf['ALIMTALK_APP_KEY']}/messages"
        data = self._post(url, payload, key)
        message = data.get("message") or {}
        return _results(group, message.get("sendResults") or [], message.get("requestId", ""), data)

    def parse_report(self, request):
        return parse_json_report(request)


def _local(e164: str) -> str:
    """NHN takes Korean numbers in local form: +821012345678 -> 01012345678."""
    return "0" + e164[3:] if e164.startswith("+82") else e164


def _results(group, rows, request_id, data) -> list[Result]:
    by_key = {str(r.get("recipientGroupingKey")): r for r in rows}
    header = data.get("header") or {}
    results = []
    for m in group:
        row = by_key.get(str(m.pk))
        if row is None:
            # The whole request failed (header) or the answer left the recipient out: nothing was accepted for it.
            results.append(Result(m.pk, "retry" if header.get("isSuccessful", True) else "failed",
                                  detail=str(header.get("resultMessage", "no result"))[:300]))
            continue
        if int(row.get("resultCode", 0)) == 0:
            results.append(Result(m.pk, "sent", provider_message_id=f"{request_id}:{row.get('recipientSeq', '')}"))
        else:
            results.append(Result(m.pk, "failed", detail=f"{row.get('resultCode')}: {row.get('resultMessage', '')}"[:300]))
    return results
