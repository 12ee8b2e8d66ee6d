"""Tiny pages for the page tests, drawn here with Pillow's own font (no system fonts, no shared data)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

LINES = ["reading whole pages", "line by line in order", "the third line 2048"]


def font(size: int = 22) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def text_page(lines=LINES, size: tuple[int, int] = (900, 400), at=(60, 60), lead: int = 48,
              font_size: int = 22) -> tuple[Image.Image, list[tuple[str, tuple[int, int, int, int]]]]:
    """A white page with `lines` drawn top to bottom; returns it and each line's (text, ink box)."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    f = font(font_size)
    truth = []
    for i, text in enumerate(lines):
        xy = (at[0], at[1] + i * lead)
        draw.text(xy, text, font=f, fill=(0, 0, 0))
        truth.append((text, draw.textbbox(xy, text, font=f)))
    return img, truth


def tiny_pdf(path, pages: list[Image.Image], dpi: int = 150) -> None:
    """A PDF of the given page images, one per page, sized so that rendering at `dpi` gives them back."""
    pages[0].save(path, format="PDF", resolution=dpi, save_all=True, append_images=pages[1:])


def hand_pdf(path, page_count: int, encrypt: bool = False) -> None:
    """A hand-written PDF of `page_count` empty pages (a cross-reference table and all); with `encrypt`, its
    trailer names a standard security handler, so it opens only with a password."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [" + " ".join(f"{3 + i} 0 R" for i in range(page_count))
            + f"] /Count {page_count} >>"]
    objs += ["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"] * page_count
    if encrypt:
        objs.append("<< /Filter /Standard /V 1 /R 2 /O <" + "11" * 32 + "> /U <" + "22" * 32 + "> /P -4 >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    extra = f" /Encrypt {len(objs)} 0 R /ID [<{'ab' * 16}> <{'ab' * 16}>]" if encrypt else ""
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R{extra} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    with open(path, "wb") as f:
        f.write(out)
