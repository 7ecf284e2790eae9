"""A tiny document model rendered twice: Markdown (images linked from img/) and one
self-contained HTML file (images embedded as base64 data URIs)."""

from __future__ import annotations

import base64
import html
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str  # plain text; `**x**` bold and `code` spans are kept in both renderings


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Image:
    path: Path  # a file under the report's img/ folder
    caption: str
    width: int = 0  # HTML display width in px (0: natural size, capped by the page)
    legend: bool | None = None  # carries a legend (None: if named like a t-SNE or curves figure)

    @property
    def has_legend(self) -> bool:
        return self.legend if self.legend is not None else bool(LEGEND_NAMES.search(self.path.stem))


# Figures with a legend (core.LEGEND_WIDTH = 640 px for t-SNE; curve panels are 430 px a
# panel) are shown at least LEGEND_MIN_PX wide and smoothly scaled, so their text stays legible.
LEGEND_NAMES = re.compile(r"tsne|curves")
LEGEND_MIN_PX = 600


@dataclass
class Gallery:
    images: list  # Image or Missing blocks, shown side by side


@dataclass
class Code:
    text: str
    title: str = ""


@dataclass
class Missing:
    what: str  # shown as a "missing" note: an artefact or run that is not there


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)


LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


TAG = re.compile(r"(<[^>]*>)")
LONG_TOKEN = re.compile(r"[^\s<>]{25,}")
BREAK_AFTER = set("/_.,:;=-")


def _breakable(token: str, every: int = 16) -> str:
    """<wbr> break points in one long escaped token: after / _ . , : ; = - and at least every
    `every` characters (entities such as &amp; stay whole). Ordinary words get none, so table
    cells keep them whole (overflow-wrap:break-word) while paths and ids still wrap."""
    out, run = [], 0
    for piece in re.findall(r"&#?\w+;|.", token):
        out.append(piece)
        run += 1
        if piece in BREAK_AFTER or run >= every:
            out.append("<wbr>")
            run = 0
    return "".join(out).removesuffix("<wbr>")


def _soft_breaks(markup: str) -> str:
    """_breakable applied to the long tokens of the text between tags."""
    parts = TAG.split(markup)
    return "".join(
        p if i % 2 else LONG_TOKEN.sub(lambda m: _breakable(m.group()), p)
        for i, p in enumerate(parts)
    )


def _inline_html(text: str) -> str:
    """Escape, then render `code`, **bold** and [text](relative link) spans (long tokens get
    <wbr> break points)."""
    out, parts = [], text.split("`")
    for i, part in enumerate(parts):
        esc = html.escape(part)
        if i % 2:
            out.append(f"<code>{esc}</code>")
        else:
            esc = LINK.sub(lambda m: f'<a href="{m.group(2)}"><code>{m.group(1)}</code></a>', esc)
            bold = esc.split("**")
            out.append("".join(f"<b>{b}</b>" if j % 2 else b for j, b in enumerate(bold)))
    return _soft_breaks("".join(out))


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, base: Path) -> str:
    """Markdown with image links relative to `base` (the folder REPORT.md is written to)."""
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += [f"{'#' * b.level} {b.text}", ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"*{b.caption}*", ""]
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows]
            out.append("")
        elif isinstance(b, Image | Gallery | Missing):
            for im in b.images if isinstance(b, Gallery) else [b]:
                if isinstance(im, Missing):
                    out += [f"> **missing:** {im.what}", ""]
                else:
                    out += [
                        f"![{im.caption}]({im.path.relative_to(base).as_posix()})",
                        f"*{im.caption}*",
                        "",
                    ]
        elif isinstance(b, Code):
            if b.title:
                out += [f"**{b.title}**", ""]
            out += ["```", b.text.rstrip("\n"), "```", ""]
    return "\n".join(out)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _png_width(path: Path) -> int:
    """Pixel width from a PNG's IHDR chunk (0 if the file is not a PNG)."""
    with path.open("rb") as f:
        head = f.read(24)
    return struct.unpack(">I", head[16:20])[0] if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


def _figure_html(im: Image | Missing) -> str:
    if isinstance(im, Missing):
        return f'<p class="missing"><b>missing:</b> {_inline_html(im.what)}</p>'
    width, attrs, natural = im.width, "", _png_width(im.path)
    if im.has_legend:
        width = max(width or natural, LEGEND_MIN_PX)
        attrs = ' class="legend" data-legend'
    elif width and width < natural:  # shrunk: smooth, as pixelated drops rows of text
        attrs = ' class="smooth"'
    style = f' style="width:{width}px"' if width else ""
    return (
        f'<figure><img src="{_data_uri(im.path)}" alt="{html.escape(im.caption)}"{attrs}{style}>'
        f"<figcaption>{_inline_html(im.caption)}</figcaption></figure>"
    )


# Tables size their columns so that words stay whole: cells wrap only between words
# (overflow-wrap:break-word keeps a word's width in the column's minimum) and long tokens
# (paths, run names) at the <wbr> points _soft_breaks puts in them; headers never break a
# word. Running text, captions and code may break anywhere rather than overflow the page.
CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
h1,h2,h3,p,summary,figcaption{overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.6em 0 1.2em}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}
td{overflow-wrap:break-word}th{background:#eee;overflow-wrap:normal;word-break:keep-all;hyphens:none}
p.caption{font-style:italic;margin:1em 0 .2em}p.caption+table{margin-top:0}
figure{display:inline-block;margin:.4em .8em .8em 0;vertical-align:top;max-width:100%}figcaption{font-size:.85em;color:#555;max-width:640px}
img{max-width:100%;height:auto;box-sizing:border-box;image-rendering:pixelated;border:1px solid #ddd}img.legend,img.smooth{image-rendering:auto}
pre{background:#f6f6f6;padding:.6em;font-size:.75em;white-space:pre-wrap;overflow-wrap:anywhere}
.missing{background:#fff3cd;border-left:4px solid #d39e00;padding:.3em .8em}
.gallery{display:flex;flex-wrap:wrap}
"""


def to_html(doc: Document) -> str:
    """One self-contained HTML page (CSS inline, images as data URIs)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Table):
            # the caption above the table, not a <caption>: that would be squeezed to the
            # width of a narrow table
            cap = f'<p class="caption">{_inline_html(b.caption)}</p>' if b.caption else ""
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in r) + "</tr>"
                for r in b.rows
            )
            out.append(f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image | Missing):
            out.append(_figure_html(b))
        elif isinstance(b, Gallery):
            out.append(
                '<div class="gallery">' + "".join(_figure_html(im) for im in b.images) + "</div>"
            )
        elif isinstance(b, Code):
            title = (
                f"<summary>{html.escape(b.title)}</summary>"
                if b.title
                else "<summary>show</summary>"
            )
            out.append(f"<details>{title}<pre>{html.escape(b.text)}</pre></details>")
    out.append("</body></html>")
    return "\n".join(out)


def write(doc: Document, out_dir: Path) -> tuple[Path, Path]:
    """Write REPORT.md and report.html into `out_dir` (images must already be in out_dir/img)."""
    md, page = out_dir / "REPORT.md", out_dir / "report.html"
    md.write_text(to_markdown(doc, out_dir))
    page.write_text(to_html(doc))
    return md, page
