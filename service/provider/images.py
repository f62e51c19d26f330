"""Real PNGs for the simulator: outputs (the input image extended to the requested size),
and sample inputs it serves itself, so a walk-through needs no network."""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from PIL import Image, ImageDraw, ImageFilter, ImageOps, UnidentifiedImageError

MAX_INPUT_BYTES = 10 * 1024 * 1024
MAX_SIDE = 1440  # the seed's largest width and height


def decode_base64_image(data: str) -> bytes | None:
    if data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    if len(data) > MAX_INPUT_BYTES * 4 // 3 + 4:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def inspect_image(data: bytes) -> str | None:
    """Why these bytes may not be outpainted (a decompression bomb, or over 1440 px on a
    side), read from the header alone; None when they may (or are no image at all, which
    the simulator answers with a placeholder)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return "The image is too large to decode (a decompression bomb)."
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            return None
    if width > MAX_SIDE or height > MAX_SIDE:
        return f"The image is {width}x{height} px; at most {MAX_SIDE} px on a side."
    return None


def _placeholder(seed: int) -> Image.Image:
    """A gradient to stand in for an input that could not be read."""
    size = 256
    hue = seed % 256
    img = Image.linear_gradient("L").resize((size, size))
    return Image.merge("RGB", (img, img.rotate(90), Image.new("L", (size, size), hue)))


def _open(source: bytes | None, seed: int) -> Image.Image:
    if source and inspect_image(source) is None:
        try:
            with Image.open(io.BytesIO(source)) as img:
                return img.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
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


SAMPLES = ("room", "lake")  # GET {simulator}/samples/{name}.png


def sample_png(name: str) -> bytes | None:
    """A small drawn picture to outpaint (256 × 192), or None for an unknown name."""
    if name not in SAMPLES:
        return None
    img = Image.new("RGB", (256, 192))
    draw = ImageDraw.Draw(img)
    if name == "room":  # a wall, a window with sky, a floor, a table
        draw.rectangle((0, 0, 256, 130), fill=(222, 203, 170))
        draw.rectangle((0, 130, 256, 192), fill=(120, 84, 52))
        draw.rectangle((88, 26, 168, 96), fill=(250, 250, 245))
        draw.rectangle((94, 32, 162, 90), fill=(135, 190, 235))
        draw.line((128, 32, 128, 90), fill=(250, 250, 245), width=4)
        draw.rectangle((60, 120, 196, 132), fill=(90, 60, 36))
        draw.rectangle((70, 132, 78, 170), fill=(90, 60, 36))
        draw.rectangle((178, 132, 186, 170), fill=(90, 60, 36))
    else:  # sky, hills, a lake, a sun
        draw.rectangle((0, 0, 256, 110), fill=(160, 205, 240))
        draw.ellipse((180, 20, 220, 60), fill=(255, 220, 120))
        draw.polygon([(0, 110), (70, 60), (140, 110)], fill=(80, 130, 90))
        draw.polygon([(100, 110), (190, 50), (256, 110)], fill=(60, 110, 80))
        draw.rectangle((0, 110, 256, 192), fill=(50, 110, 170))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
