"""HTML building blocks: escaping, tables, embedded images, relative links, the page."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

__all__ = ["Html", "esc", "file_link", "page", "png_img", "table"]


class Html(str):
    """Text that is already HTML (not escaped again by :func:`table`)."""


def esc(value: object) -> str:
    """Escape any value for HTML text or an attribute value."""
    return html.escape("" if value is None else str(value), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, cls: str = "") -> Html:
    """An HTML table; cells are escaped unless they are :class:`Html`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, Html) else esc(c)}</td>" for c in row)
        + "</tr>" for row in rows)
    attr = f' class="{esc(cls)}"' if cls else ""
    return Html(f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>")


def png_img(data: bytes, alt: str, *, cls: str = "plot") -> Html:
    """An ``<img>`` embedding PNG bytes as a base64 data URI."""
    encoded = base64.b64encode(data).decode("ascii")
    return Html(f'<img class="{esc(cls)}" alt="{esc(alt)}" src="data:image/png;base64,{encoded}">')


def file_link(path: str | Path, base: Path, *, text: str | None = None) -> Html:
    """A link to a local file, relative to the report's directory when possible."""
    target = Path(path)
    try:
        href = os.path.relpath(target, base)
    except ValueError:  # another drive (Windows)
        href = target.as_uri() if target.is_absolute() else str(target)
    label = text if text is not None else href
    return Html(f'<a href="{esc(quote(href))}" title="{esc(target)}">{esc(label)}</a>')


_CSS = """
:root { --fg: #1d2430; --muted: #5b6675; --line: #dde2e8; --bg: #ffffff; --panel: #f6f8fa;
  --bad: #b42318; --bad-bg: #fdecea; --warn: #8a5a00; --warn-bg: #fff4dc; --ok: #1a7f37;
  --ok-bg: #e7f5ec; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { padding: 18px 32px 12px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: var(--muted); font-size: 12.5px; }
nav { padding: 8px 32px; border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { margin-right: 18px; }
main { padding: 8px 32px 48px; max-width: 1240px; }
h2 { margin: 28px 0 10px; font-size: 18px; border-bottom: 2px solid var(--line);
  padding-bottom: 4px; }
h3 { margin: 22px 0 8px; font-size: 15px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left;
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px;
  background: var(--panel); }
.card .n { font-size: 22px; font-weight: 650; }
.card .l { color: var(--muted); font-size: 12px; }
.card.bad { background: var(--bad-bg); border-color: #f5c2bd; }
.card.warn { background: var(--warn-bg); border-color: #f1d9a6; }
.card.ok { background: var(--ok-bg); border-color: #b7e1c4; }
.state { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
  background: var(--panel); border: 1px solid var(--line); }
.state.failed { background: var(--bad-bg); color: var(--bad); border-color: #f5c2bd; }
.state.blocked, .state.running, .state.pending { background: var(--warn-bg);
  color: var(--warn); border-color: #f1d9a6; }
.state.done, .state.cached { background: var(--ok-bg); color: var(--ok); border-color: #b7e1c4; }
.note { color: var(--muted); font-size: 13px; }
.reason { color: var(--bad); }
img.plot { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 4px; margin: 6px 0; }
pre.log { background: #0f1720; color: #e6edf3; padding: 10px 12px; border-radius: 5px;
  font-size: 12px; line-height: 1.35; overflow-x: auto; max-height: 360px; margin: 4px 0 14px; }
.failure { border-left: 4px solid var(--bad); padding: 2px 0 2px 12px; margin: 12px 0; }
.failure .err { color: var(--bad); white-space: pre-wrap; font-family: ui-monospace, monospace;
  font-size: 12.5px; }
.reffile { border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px;
  margin: 14px 0; }
.reffile h3 { margin-top: 4px; }
.reffile .cols { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.reffile .cols > div { flex: 1 1 560px; min-width: 0; }
.reffile .cols > div.stats { flex: 0 1 300px; }
.reffile .stats td:first-child { color: var(--muted); }
table.leftovers td:nth-child(3) .path { white-space: nowrap; }
details { margin: 6px 0 12px; }
details > table { margin-left: 14px; }
h4 { margin: 12px 0 4px; font-size: 13.5px; }
.comparison { border-top: 1px dashed var(--line); margin-top: 8px; }
table.verdicts td:last-child { max-width: 720px; }
summary { cursor: pointer; color: var(--accent); }
code, .path { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px;
  word-break: break-all; }
"""


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The whole self-contained document (inline CSS, no script, no external resource)."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(text)}</a>' for anchor, text in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<link rel="icon" href="data:,">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{esc(title)}</h1><div class=\"meta\">{subtitle}</div></header>\n"
        f"<nav>{links}</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
