"""A local provider for tests, the bench and demos: a tiny stdlib HTTP server that speaks the NHN-style SMS/LMS,
AlimTalk and FriendTalk endpoints that ``providers.nhn`` calls, and honours idempotency like a careful provider:

- a request whose ``X-Idempotency-Key`` it has seen gets the first answer again, nothing is sent twice;
- a recipient whose ``recipientGroupingKey`` (our message id) it has accepted before is not delivered twice.

``deliveries`` holds what "handsets" received (once per message); ``requests`` every request; ``repeats`` the
recipients it dropped as repeats. ``delay`` sleeps after accepting and before answering, which is exactly the window
in which a worker killed mid-batch leaves a message accepted but not recorded; ``fail_after_accepting = n`` answers
503 to the next n requests after accepting them (a gateway that lost the answer). ``refuse_alimtalk_to`` makes AlimTalk
fail for those numbers (to see the SMS fallback). ``post_reports`` sends signed delivery reports to our webhook.

    with LocalProvider() as provider:
        settings.MESSAGING_NHN = {..., "SMS_URL": provider.url, "ALIMTALK_URL": provider.url}
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalProvider:
    def __init__(self, *, delay: float = 0.0, refuse_alimtalk_to: set[str] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.delay = delay
        self.refuse_alimtalk_to = set(refuse_alimtalk_to or ())
        self.lock = threading.Lock()
        self.deliveries: dict[str, dict] = {}  # recipientGroupingKey -> what was delivered
        self.requests: list[dict] = []
        self.repeats: list[str] = []
        self.answers: dict[str, dict] = {}  # X-Idempotency-Key -> first answer
        self.request_count = 0
        self.fail_after_accepting = 0  # answer 503 to the next N requests although they were accepted
        self.files: dict[str, dict] = {}  # uploaded MMS pictures: fileId -> {"name", "bytes"}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                answer = provider.handle(self.path, payload, self.headers.get("X-Idempotency-Key", ""))
                if provider.delay:
                    time.sleep(provider.delay)
                status = 200
                with provider.lock:
                    if provider.fail_after_accepting:
                        provider.fail_after_accepting -= 1
                        status, answer = 503, {"header": {"isSuccessful": False, "resultMessage": "gateway timeout"}}
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client killed mid-request (the crash test) is expected
                pass

        self.server = Server((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle ---
    def start(self) -> "LocalProvider":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- the API ---
    def handle(self, path: str, payload: dict, key: str) -> dict:
        if path.endswith("/attachfile/binaryUpload"):
            return self.upload(payload)
        with self.lock:
            self.request_count += 1
            self.requests.append({"path": path, "key": key, "recipients": len(payload.get("recipientList", []))})
            if key and key in self.answers:
                for r in payload.get("recipientList", []):
                    self.repeats.append(str(r.get("recipientGroupingKey")))
                return self.answers[key]
            request_id = uuid.uuid4().hex[:20]
            files = [str(f) for f in payload.get("attachFileIdList") or []]
            if any(f not in self.files for f in files):
                return {"header": {"isSuccessful": False, "resultCode": -1000, "resultMessage": "unknown attachment"}}
            results = []
            kind = "alimtalk" if "/alimtalk/" in path else "friendtalk" if "/friendtalk/" in path else "sms"
            for seq, r in enumerate(payload.get("recipientList", []), start=1):
                group_key = str(r.get("recipientGroupingKey"))
                number = r.get("recipientNo", "")
                code, message = 0, "SUCCESS"
                if kind == "alimtalk" and number in self.refuse_alimtalk_to:
                    code, message = -3001, "not a KakaoTalk user"
                elif group_key in self.deliveries:
                    self.repeats.append(group_key)  # accepted before: not delivered twice
                else:
                    params = r.get("templateParameter") or {}
                    text = params.get("m", r.get("content", "")) if kind != "alimtalk" else payload.get("templateCode", "")
                    self.deliveries[group_key] = {"to": number, "text": text, "subject": params.get("t", ""), "kind": kind,
                                                  "path": path, "request_id": request_id, "seq": seq, "variables": params,
                                                  "files": files}
                results.append({"recipientSeq": seq, "recipientNo": number, "resultCode": code, "resultMessage": message,
                                "recipientGroupingKey": group_key})
            if kind == "sms":
                answer = {"header": {"isSuccessful": True, "resultCode": 0, "resultMessage": "SUCCESS"},
                          "body": {"data": {"requestId": request_id, "statusCode": "2", "sendResultList": results}}}
            else:
                answer = {"header": {"isSuccessful": True, "resultCode": 0, "resultMessage": "success"},
                          "message": {"requestId": request_id, "sendResults": results}}
            if key:
                self.answers[key] = answer
            return answer

    def upload(self, payload: dict) -> dict:
        """An MMS picture: the file's bytes as base64 in ``fileBody``; answers its ``fileId``."""
        import base64

        try:
            data = base64.b64decode(payload.get("fileBody") or "", validate=True)
        except ValueError:
            data = b""
        if not data or not str(payload.get("fileName", "")).lower().endswith((".jpg", ".jpeg")):
            return {"header": {"isSuccessful": False, "resultCode": -1001, "resultMessage": "bad attachment"}}
        with self.lock:
            file_id = uuid.uuid4().hex[:16]
            self.files[file_id] = {"name": payload["fileName"], "bytes": data}
        return {"header": {"isSuccessful": True, "resultCode": 0, "resultMessage": "SUCCESS"},
                "body": {"data": {"fileId": file_id, "fileName": payload["fileName"]}}}

    # --- delivery reports ---
    def post_reports(self, webhook_url: str, secret: str, reports: list[dict]) -> int:
        """POST signed reports ({"id", "message_id" | "key", "status", "reason", "at"}) to our webhook; returns the status."""
        import hashlib
        import hmac
        import urllib.error
        import urllib.request

        body = json.dumps({"reports": reports}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "X-Dangol-Signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


def serve_forever(port: int = 8765, delay: float = 0.0) -> None:  # pragma: no cover - manual use
    """``python -m dangol.messaging.testing`` runs the provider on a fixed port (demos, the bench)."""
    provider = LocalProvider(port=port, delay=delay).start()
    print(f"local provider on {provider.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        provider.stop()


if __name__ == "__main__":  # pragma: no cover
    serve_forever()
