"""The report's reference-file section (a card per final file) and the summary's verdicts."""

from __future__ import annotations

from pathlib import Path

from refsmith.report.baselines import BaselineFinder
from refsmith.report.html import Html, esc, file_link, png_img, table
from refsmith.report.reffiles import RefFileView, describe_reffile
from refsmith.report.rundata import RunData
from refsmith.report.summary import MAX_LISTED

__all__ = ["describe_finals", "reffiles_section", "verdicts_html"]


def describe_finals(run: RunData, *, max_pictures: int) -> list[RefFileView]:
    """Every final file read, compared with its baseline and drawn (the first
    ``max_pictures``), one at a time: only small results are kept."""
    finder = BaselineFinder(run)
    views = []
    for index, path in enumerate(run.final_files):
        header = _primary(path)
        baseline = finder.find(path, path.parent.name, header) if header is not None else None
        if baseline is not None:
            baseline.notes[:0] = finder.config_notes
        views.append(describe_reffile(path, run.plan, picture=index < max_pictures,
                                      baseline=baseline, nsigma=finder.sigma))
    return views


def _primary(path: Path) -> dict | None:
    from astropy.io import fits

    try:
        return dict(fits.getheader(path))
    except (OSError, ValueError):
        return None


def _verdict(view: RefFileView) -> Html:
    if view.error:
        return Html('<span class="state failed">unreadable</span>')
    if view.comparison_error:
        return Html(f'<span class="state failed">baseline unreadable</span> '
                    f'<span class="note">{esc(view.comparison_error)}</span>')
    if view.comparison is None:
        why = "; ".join(view.baseline.notes) if view.baseline else "no header"
        return Html(f'<span class="state pending">no baseline</span> '
                    f'<span class="note">{esc(why)}</span>')
    verdict = view.comparison.verdict
    cls = {"identical": "done", "consistent": "done", "changed": "blocked"}.get(verdict,
                                                                               "failed")
    return Html(f'<span class="state {cls}">{esc(verdict)}</span> '
                f'{esc(view.comparison.line.partition(": ")[2])}')


def verdicts_html(run: RunData, views: list[RefFileView]) -> str:
    """One line per final file: its baseline (and where it came from) and the verdict."""
    if not views:
        return ""
    rows = [(file_link(v.path, run.run_dir, text=v.path.name),
             (Html(f"{file_link(v.baseline.path, run.run_dir, text=v.baseline.path.name)} "
                   f'<span class="note">({esc(v.baseline.source)})</span>')
              if v.baseline and v.baseline.path else ""), _verdict(v))
            for v in views[:MAX_LISTED]]
    return table(("final file", "baseline", "verdict"), rows, cls="verdicts")


def _sources(view: RefFileView, base: Path) -> str:
    if not view.sources:
        return '<p class="note">Provenance unknown (not in the plan, no HISTORY).</p>'
    items = []
    for source in view.sources:
        exposures = "".join(f"<li><code>{esc(role)}</code> "
                            f"{file_link(raw, base, text=Path(raw).name)}</li>"
                            for role, raw in source.exposures)
        items.append(f"<li>{file_link(source.path, base, text=Path(source.path).name)}"
                     + (f"<ul>{exposures}</ul>" if exposures else "") + "</li>")
    listing = f"<ul>{''.join(items)}</ul>"
    n_raw = sum(len(s.exposures) for s in view.sources)
    label = f"made from {len(view.sources)} individual files ({n_raw} exposures)"
    if len(items) > 8 or n_raw > 12:
        return f"<details><summary>{esc(label)}</summary>{listing}</details>"
    return f"<p>{esc(label)}:</p>{listing}"


def _comparison(view: RefFileView, base: Path) -> str:
    parts = ['<div class="comparison"><h4>Compared with the baseline</h4>']
    if view.baseline is not None and view.baseline.path is not None:
        parts.append(f"<p>baseline {file_link(view.baseline.path, base)} "
                     f'<span class="note">({esc(view.baseline.source)})</span></p>')
    parts.append(f"<p>{_verdict(view)}</p>")
    result = view.comparison
    if result is not None and result.kind == "mask":
        parts.append(table(("", "pixels"), [("newly flagged", result.newly_flagged),
                                            ("no longer flagged", result.unflagged)]))
    if view.comparison_png is not None:
        parts.append(png_img(view.comparison_png, f"{view.path.name}: difference from the "
                             "baseline and histogram of differences"))
    if view.baseline is not None and view.baseline.notes and view.baseline.source != "config":
        parts.append('<ul class="note">' + "".join(f"<li>{esc(n)}</li>"
                                                  for n in view.baseline.notes) + "</ul>")
    parts.append("</div>")
    return "".join(parts)


def _card(view: RefFileView, run: RunData, max_pictures: int) -> str:
    path = view.path
    parts = ['<div class="reffile">',
             f"<h3>{esc(view.recipe)}: {file_link(path, run.run_dir, text=path.name)}</h3>"]
    if view.error:
        parts.append(f'<p class="reason">cannot be read: {esc(view.error)}</p>')
    else:
        rows = [("array", view.array), ("shape", " x ".join(map(str, view.shape))),
                *view.stats.items(), *sorted(view.meta.items())]
        picture = (png_img(view.png, f"{path.name}: {view.array} and histogram")
                   if view.png is not None else
                   f'<p class="note">Pictures are drawn for the first {max_pictures} '
                   "files only.</p>")
        extra = ""
        if view.amps:
            fourth = (("flagged science pixels", "fraction") if view.kind == "mask"
                      else ("median", "robust std"))
            extra += ("<h4>Per amplifier</h4>"
                      + table(("amplifier", "columns", *fourth), view.amps, cls="amps"))
        if view.flags:
            extra += ("<h4>Science pixels per flag</h4>"
                      + table(("flag", "pixels"), sorted(view.flags.items()), cls="flags"))
        parts.append(f'<div class="cols"><div class="stats">'
                     f'{table(("", "value"), rows)}{extra}</div><div>{picture}</div></div>')
        parts.append(_comparison(view, run.run_dir))
    parts.append(_sources(view, run.run_dir))
    parts.append("</div>")
    return "\n".join(parts)


def reffiles_section(run: RunData, views: list[RefFileView], *, max_pictures: int) -> str:
    """Per final reference file: pictures, statistics, per-amplifier table, comparison
    with its baseline and provenance."""
    parts = ['<section id="reffiles"><h2>Final reference files</h2>']
    if not run.final_files:
        parts.append('<p class="note">No final reference file in '
                     f"{file_link(run.run_dir / 'final', run.run_dir)}/ yet.</p>")
        if run.individual_files:
            links = "".join(f"<li>{file_link(p, run.run_dir)}</li>"
                            for p in run.individual_files[:MAX_LISTED])
            parts.append(f"<p>Individual files written so far:</p><ul>{links}</ul>")
    parts += [_card(view, run, max_pictures) for view in views]
    parts.append("</section>")
    return "\n".join(parts)
