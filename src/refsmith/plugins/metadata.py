"""Reference-file metadata defaults and provenance (HISTORY) written by the framework."""

from __future__ import annotations

import hashlib
import json
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from astropy.time import Time

__all__ = ["PROVENANCE_PREFIX", "add_history", "data_used", "fill_metadata", "input_exposures",
           "params_digest", "setup_from_header", "software_versions"]

PROVENANCE_PREFIX = "refsmith"
_RAW_FIELD = re.compile(r"raw=(.+?)\s?\|\s?state=")
_SOFTWARE = ("refsmith", "jwst", "stdatamodels", "stcal", "crds", "numpy", "astropy")


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a reference file."""
    versions = {"python": platform.python_version()}
    for name in _SOFTWARE:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def params_digest(params: Mapping[str, Any]) -> str:
    """First 12 hex digits of the SHA-1 of the parameters as sorted JSON."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def setup_from_header(header: Mapping[str, Any]) -> dict[str, Any]:
    """Datamodel attribute (dotted) -> value of the setup keywords found in a header."""
    table = {
        "INSTRUME": "meta.instrument.name", "DETECTOR": "meta.instrument.detector",
        "SUBARRAY": "meta.subarray.name", "SUBSTRT1": "meta.subarray.xstart",
        "SUBSTRT2": "meta.subarray.ystart", "SUBSIZE1": "meta.subarray.xsize",
        "SUBSIZE2": "meta.subarray.ysize", "FASTAXIS": "meta.subarray.fastaxis",
        "SLOWAXIS": "meta.subarray.slowaxis", "READPATT": "meta.exposure.readpatt",
    }
    found = {}
    for keyword, attribute in table.items():
        value = header.get(keyword)
        if value is not None and value != "":
            found[attribute] = value.strip() if isinstance(value, str) else value
    return found


def earliest_start(headers: Iterable[Mapping[str, Any]]) -> str | None:
    """ISO time (seconds) of the earliest EXPSTART among ``headers``, if any."""
    starts = [float(h["EXPSTART"]) for h in headers if h.get("EXPSTART") not in (None, "")]
    if not starts:
        return None
    return Time(min(starts), format="mjd", scale="utc").isot[:19]


def _get(model: Any, dotted: str) -> Any:
    node = model
    for name in dotted.split("."):
        node = getattr(node, name, None)
        if node is None:
            return None
    return node


def _set(model: Any, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = model
    for name in parents:
        node = getattr(node, name)
    setattr(node, last, value)


def fill_metadata(
    model: Any,
    *,
    reftype: str,
    params: Any,
    default_description: str,
    setup: Mapping[str, Any],
    useafter: str | None,
) -> None:
    """Fill the CRDS metadata the plug-in left unset; parameters given in the config win.

    ``params.model_fields_set`` tells which of author/pedigree/description/useafter came
    from the config or the command line (those overwrite the plug-in's values);
    ``params.selectors`` are set last.
    """
    explicit = params.model_fields_set
    values = {
        "meta.reftype": reftype.upper(),
        "meta.author": params.author,
        "meta.pedigree": params.pedigree,
        "meta.description": params.description or default_description,
        "meta.useafter": params.useafter or useafter or "2000-01-01T00:00:00",
        "meta.telescope": "JWST",
    }
    for attribute, value in values.items():
        field = attribute.rsplit(".", 1)[1]
        if _get(model, attribute) in (None, "") or field in explicit:
            _set(model, attribute, value)
    for attribute, value in setup.items():
        if _get(model, attribute) in (None, ""):
            _set(model, attribute, value)
    for attribute, value in params.selectors.items():
        _set(model, attribute if attribute.startswith("meta.") else f"meta.{attribute}",
             value)


def data_used(exposures: Sequence[str]) -> list[str]:
    """The ``DATA USED`` block of HISTORY: how many raw exposures, then one per line.

    JWST reference files list the exposures they were made from this way; the base
    names are given (the full paths are in the ``input`` provenance lines).
    """
    names = list(dict.fromkeys(Path(e).name for e in exposures))
    return [f"DATA USED: {len(names)} raw exposure{'s' if len(names) != 1 else ''}",
            *(f"DATA USED: {name}" for name in names)]


def add_history(model: Any, lines: Sequence[str]) -> None:
    """Append HISTORY entries (FITS HISTORY cards and ASDF history)."""
    for line in lines:
        model.add_history_entry(line)


def input_exposures(path: str | Path) -> list[str]:
    """Raw exposures named in a refsmith file's provenance HISTORY (in order).

    Read from the primary header (not the datamodel, which would load the arrays: 640 MB
    for a full-frame dark). FITS splits long HISTORY entries over 72-character cards, so
    the cards are joined before the ``raw=... | state=`` fields of the input lines are
    parsed.
    """
    from astropy.io import fits

    header = fits.getheader(str(path), 0)
    text = "".join(str(card) for card in header.get("HISTORY", []))
    return [m.strip() for m in _RAW_FIELD.findall(text)]
