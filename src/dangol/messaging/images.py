"""Pictures for MMS: checked when they are uploaded, so that a send never fails on them.

Korean SMS gateways take a JPEG of at most 300 KB and about 1500 × 1440 pixels (Naver Cloud SENS documents exactly
these limits; NHN Cloud's are alike), so anything else is refused here with the reason, and nothing is stored. Pillow
reads the picture (the declared name or type is not trusted)."""
from __future__ import annotations

import hashlib
import io
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from dangol.core import audit
from dangol.core.audit import Actor

from .models import MessageImage

MAX_BYTES = 300 * 1024
MAX_WIDTH, MAX_HEIGHT = 1500, 1440


def max_bytes() -> int:
    return int(getattr(settings, "DANGOL_MMS_IMAGE_MAX_BYTES", MAX_BYTES))


def _clean_name(name: str) -> str:
    """An ASCII file name of at most 40 characters ending in .jpg, as the gateways want it."""
    stem = re.sub(r"\.(jpe?g)$", "", (name or "").strip(), flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:36] or "image"
    return f"{stem}.jpg"


def add_image(*, actor: Actor, name: str, data: bytes, unit=None) -> MessageImage:
    """Store an MMS picture (or return the one already stored with the same bytes). Raises ValidationError with the
    reason for anything a gateway would refuse: not a JPEG, broken, too heavy or too large."""
    if actor is None or actor.user is None:
        raise ValidationError({"image": [_("Only staff can add pictures.")]})
    if not data:
        raise ValidationError({"image": [_("The picture is empty.")]})
    if len(data) > max_bytes():
        raise ValidationError({"image": [_("An MMS picture has at most %(kb)s KB; this one has %(size)s KB.")
                                         % {"kb": max_bytes() // 1024, "size": -(-len(data) // 1024)}]})
    try:
        with Image.open(io.BytesIO(data)) as picture:
            kind, (width, height) = picture.format, picture.size
            picture.verify()  # a truncated or corrupt file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError({"image": [_("This file is not a picture that can be read.")]}) from None
    if kind != "JPEG":
        raise ValidationError({"image": [_("MMS takes JPEG pictures only (this one is %(kind)s).") % {"kind": kind}]})
    if width > MAX_WIDTH or height > MAX_HEIGHT:
        raise ValidationError({"image": [_("An MMS picture has at most %(w)s × %(h)s pixels; this one has %(width)s × "
                                           "%(height)s.") % {"w": MAX_WIDTH, "h": MAX_HEIGHT, "width": width, "height": height}]})
    digest = hashlib.sha256(data).hexdigest()
    image, created = MessageImage.objects.get_or_create(sha256=digest, defaults={
        "name": _clean_name(name), "content": data, "size": len(data), "width": width, "height": height, "unit": unit,
        "created_by": actor.user, "created_at": timezone.now()})
    if created:
        audit.record(actor=actor, action="message.image_add", obj=image, fields=["content"])
    return image


def add_upload(*, actor: Actor, upload, unit=None) -> MessageImage:
    """``add_image`` for an uploaded file: its declared size is checked before anything is read into memory."""
    if upload.size > max_bytes():
        raise ValidationError({"image": [_("An MMS picture has at most %(kb)s KB; this one has %(size)s KB.")
                                         % {"kb": max_bytes() // 1024, "size": -(-upload.size // 1024)}]})
    return add_image(actor=actor, name=upload.name, data=upload.read(), unit=unit)


def image_bytes(image_id: int) -> tuple[str, bytes]:
    """(file name, bytes) of a stored picture, for the providers."""
    name, content = MessageImage.objects.filter(pk=image_id).values_list("name", "content").get()
    return name, bytes(content)
