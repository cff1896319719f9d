"""A photo to send: a JPEG that looks like one (gradient sky, sun, sea, grain), for the
browser tests of attachments, the browser benchmark and the screenshot scripts."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image, ImageDraw


def make_photo(path: Path, size=(1600, 1200)) -> bytes:
    """A JPEG photo-like image (a sunset over the sea, with grain), written to `path`; its bytes."""
    w, h = size
    sky = Image.linear_gradient("L").resize((w, h))
    image = Image.merge(
        "RGB",
        (
            sky.point(lambda v: 120 + v // 2),
            sky.point(lambda v: 60 + v // 2),
            sky.point(lambda v: 160 - v // 2),
        ),
    )
    draw = ImageDraw.Draw(image)
    draw.ellipse((w * 0.6, h * 0.45, w * 0.75, h * 0.65), fill=(255, 214, 120))
    draw.rectangle((0, h * 0.6, w, h), fill=(20, 60, 110))
    grain = Image.frombytes("L", size, os.urandom(w * h)).point(lambda v: v // 8)
    image = Image.composite(
        image, Image.new("RGB", size, (0, 0, 0)), grain.point(lambda v: 255 - v)
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    path.write_bytes(out.getvalue())
    return out.getvalue()
