"""The bundled referential (issue 14 §3): certifications, Formacode, ROME and NSF codes with
their labels, read once from the CSV files of `data/` and searched by code or label.

The NSF table is the decree 94-522 list; Formacode and ROME (V3 codes) are the few hundred
entries the certifications use, plus a few common descriptors. Certifications (about 300) carry
their official titles, RNCP and Certif Info numbers, level, NSF, Formacode and ROME codes, taken
from the public Certif Info open-data export (a 2024 snapshot: a few fiches may since have been
replaced); a row without numbers is an official title whose fiche was not in the part of the export
read. Loading a newer export into `certifications.csv` (same columns) refreshes it.

The Formacode codes are those of that export, Formacode V13 (`FORMACODE_VERSION`, the `ref` the
LHEO export gives them): V14, the 2024 edition, came after it and renamed descriptors the file
still names the V13 way (44028 "auxiliaire vie"). Loading a V14 export means changing both.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from apps.catalogue.text import fold

DATA = Path(__file__).parent / "data"
FORMACODE_VERSION = "V13"  # of data/formacode.csv and the certifications' codes (see above)
KINDS = {"formacode": "Formacode", "rome": "ROME", "nsf": "NSF"}


@dataclass(frozen=True)
class Code:
    kind: str
    code: str
    label: str

    @property
    def text(self) -> str:
        return f"{self.code} — {self.label}"


@dataclass(frozen=True)
class Certification:
    key: str  # stable: the RNCP number, else Certif Info, else the folded title
    rncp: str
    certifinfo: str
    label: str
    level: str
    nsf: tuple[str, ...]
    formacodes: tuple[str, ...]
    romes: tuple[str, ...]


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


@functools.cache
def codes(kind: str) -> dict[str, Code]:
    """Immutable data, read once per process (not app state)."""
    return {r["code"]: Code(kind, r["code"], r["label"]) for r in _rows(f"{kind}.csv")}


@functools.cache
def certifications() -> dict[str, Certification]:
    out: dict[str, Certification] = {}
    for r in _rows("certifications.csv"):
        key = r["rncp"] or r["certifinfo"] or "-".join(fold(r["label"]).split())
        out[key] = Certification(key, r["rncp"], r["certifinfo"], r["label"], r["level"], tuple(r["nsf"].split()),
                                 tuple(r["formacodes"].split()), tuple(r["romes"].split()))
    return out


def label(kind: str, code: str) -> str:
    found = codes(kind).get(code)
    return found.label if found else ""


def search_codes(kind: str, query: str, limit: int = 30) -> list[Code]:
    """Codes of `kind` whose code starts with, or label contains, every word of `query`."""
    terms = fold(query).split()
    if not terms:
        return []
    found = [c for c in codes(kind).values()
             if all(c.code.lower().startswith(t) or t in fold(c.label) for t in terms)]
    return found[:limit]


def search_certifications(query: str, limit: int = 30) -> list[Certification]:
    """Certifications by title words or by any of their codes (RNCP, Certif Info, NSF, Formacode, ROME)."""
    terms = fold(query).split()
    if not terms:
        return []

    def matches(c: Certification, term: str) -> bool:
        codes_ = (c.rncp.lower(), c.certifinfo.lower(), *c.nsf, *c.formacodes, *(r.lower() for r in c.romes))
        return term in fold(c.label) or any(code and code.startswith(term) for code in codes_)

    return [c for c in certifications().values() if all(matches(c, t) for t in terms)][:limit]


def certification(key: str) -> Certification | None:
    return certifications().get(key)


def clean_codes(kind: str, values: list[str] | str, limit: int) -> tuple[list[str], list[str]]:
    """(known codes, unknown ones) from a list or a space/comma separated text."""
    items = values.replace(",", " ").split() if isinstance(values, str) else [str(v) for v in values]
    items = [i.strip().upper() for i in items if i.strip()]
    known = [i for i in dict.fromkeys(items) if i in codes(kind)]
    unknown = [i for i in items if i not in codes(kind)]
    return known[:limit], unknown
