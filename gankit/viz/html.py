"""Self-contained HTML pages: one stylesheet, tables, PNGs inlined as data URIs."""

from __future__ import annotations

import base64
import html
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; } td.p { color: #777; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure img { max-width: 540px; border: 1px solid #ddd; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }
.warn { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.4em 0.8em; margin: 0.4em 0; }
.ok { color: #2a7a2a; }
.banner { background: #fde8e8; border: 2px solid #c62828; border-radius: 4px; padding: 0.7em 1em; margin: 0 0 1em; }
.banner.info { background: #e8f0fd; border-color: #2857c6; }
.banner .msg { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 0.9em; margin: 0.4em 0; }
code { background: #f3f3f3; padding: 0 0.3em; }
figure.wide img { max-width: 100%; }
.grids figure img { max-width: 400px; }
.note { color: #555; font-size: 0.9em; }
"""


def html_table(header: list[str], rows: list[list[str]], left: int = 2, paper: tuple[int, ...] = ()) -> str:
    def cls(i: int) -> str:
        return ' class="l"' if i < left else (' class="p"' if i in paper else "")

    head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{html.escape(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# Marks the page with how many of its pictures decoded: <body data-images="loaded/total">, and names
# any broken one on the page itself, so a reader (or a headless browser) can see that every plot rendered.
_CHECK_IMAGES = """
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.dataset.images = ok.length + '/' + imgs.length;
  imgs.filter(function (i) { return ok.indexOf(i) < 0; }).forEach(function (i) {
    i.insertAdjacentHTML('afterend', '<p class="warn">this picture did not render: ' + i.alt + '</p>');
  });
});
"""


def page(title: str, body: str, banner: str = "") -> str:
    """A whole page; ``banner`` (HTML) goes first, above the title: what a reader must see before anything."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><script>{_CHECK_IMAGES}</script></head>"
        f"<body>{banner}<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def data_uri(png: bytes | str | Path) -> str:
    """A PNG (bytes or a file) as a data URI, so the page needs no other file."""
    raw = png if isinstance(png, bytes) else Path(png).read_bytes()
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def figure(png: bytes | str | Path, caption: str, cls: str = "") -> str:
    return (
        f"<figure{f' class={cls!r}' if cls else ''}><img src='{data_uri(png)}' alt='{html.escape(caption)}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )
