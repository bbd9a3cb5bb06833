"""Draws the app icon (packaging/icons/twin-viewer-<size>.png): a grey machine block on a dark tile with a
blue edge, the HMI's own colours (ISA-101: calm greys, blue for the operator's selection)."""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def icon(size: int) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, size - 1, size - 1], radius=size // 8, fill=(35, 39, 44, 255))
    m = size // 5
    top = [(m, size * 0.62), (size * 0.5, size * 0.78), (size - m, size * 0.62), (size * 0.5, size * 0.46)]
    d.polygon(top, fill=(141, 148, 156, 255))
    d.polygon([(m, size * 0.62), (m, size * 0.38), (size * 0.5, size * 0.22), (size * 0.5, size * 0.46)],
              fill=(170, 177, 184, 255))
    d.polygon([(size * 0.5, size * 0.46), (size * 0.5, size * 0.22), (size - m, size * 0.38), (size - m, size * 0.62)],
              fill=(111, 119, 128, 255))
    d.line([(m, size * 0.38), (size * 0.5, size * 0.22), (size - m, size * 0.38)], fill=(63, 169, 245, 255),
           width=max(1, size // 32))
    return img


if __name__ == "__main__":
    (HERE / "icons").mkdir(exist_ok=True)
    for size in (16, 32, 48, 64, 128, 256):
        icon(size).save(HERE / "icons" / f"twin-viewer-{size}.png")
    # Windows (the installer and the executable): one .ico with the usual sizes.
    icon(256).save(HERE / "icons" / "twin-viewer.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (256, 256)])
