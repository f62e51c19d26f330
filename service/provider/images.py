"""Real PNG outputs for the simulator: the input image extended to the requested size."""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

MAX_INPUT_BYTES = 10 * 1024 * 1024


def decode_base64_image(data: str) -> bytes | None:
    if data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _placeholder(seed: int) -> Image.Image:
    """A gradient to stand in for an input that could not be read."""
    size = 256
    hue = seed % 256
    img = Image.linear_gradient("L").resize((size, size))
    return Image.merge("RGB", (img, img.rotate(90), Image.new("L", (size, size), hue)))


def _open(source: bytes | None, seed: int) -> Image.Image:
    if source:
        try:
            with Image.open(io.BytesIO(source)) as img:
                return img.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError):
            pass
    return _placeholder(seed)


def outpaint_png(source: bytes | None, width: int, height: int, overlap: int, seed: int) -> bytes:
    """The input, scaled to fit and centred, on a blurred extension of itself that fills
    `width` × `height`, with the seam feathered over `overlap` pixels."""
    original = _open(source, seed)
    background = ImageOps.fit(original, (width, height)).filter(ImageFilter.GaussianBlur(12))
    inner = original.copy()
    inner.thumbnail((max(width * 3 // 4, 1), max(height * 3 // 4, 1)))
    mask = Image.new("L", inner.size, 255)
    feather = max(min(overlap, min(inner.size) // 4), 0)
    if feather:
        mask = (
            ImageOps.expand(
                Image.new(
                    "L",
                    (max(inner.width - 2 * feather, 1), max(inner.height - 2 * feather, 1)),
                    255,
                ),
                border=feather,
                fill=0,
            )
            .resize(inner.size)
            .filter(ImageFilter.GaussianBlur(feather / 2))
        )
    offset = ((width - inner.width) // 2, (height - inner.height) // 2)
    background.paste(inner, offset, mask)
    out = io.BytesIO()
    background.save(out, format="PNG")
    return out.getvalue()
