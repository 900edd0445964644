"""The dated price catalog (catalog.yml) and the side-by-side comparison built from it."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from nself.errors import NselfError
from nself.providers import registry
from nself.providers.base import Size, choose_size

_FILE = Path(__file__).with_name("catalog.yml")


@cache
def _data() -> dict:
    return yaml.load(_FILE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def sizes(provider: str) -> list[Size]:
    entry = _data()["providers"].get(provider)
    if not entry:
        return []
    return [Size(str(i), int(cpu), float(ram), int(disk), float(price), entry["currency"])
            for i, cpu, ram, disk, price in entry["sizes"]]


def as_of(provider: str) -> str | None:
    entry = _data()["providers"].get(provider)
    return str(entry["as_of"]) if entry else None


def in_usd(monthly: float, currency: str) -> float:
    return round(monthly * (_data()["eur_usd"] if currency == "EUR" else 1.0), 2)


def compare(normalised: str, live: dict[str, dict] | None = None) -> list[dict]:
    """One row per provider of the registry, cheapest first; providers without a price say why.
    `live` rows (from the APIs) replace catalog rows of the same provider."""
    live = live or {}
    rows, missing = [], []
    for name, entry in registry.PROVIDERS.items():
        if name in live:
            row = dict(live[name])
        else:
            try:
                size = choose_size(sizes(name), normalised) if sizes(name) else None
            except NselfError:
                size = None
            if size is None:
                reason = "no size in range" if sizes(name) else "not in the catalog"
                missing.append({"provider": name, "title": entry.title, "error": reason})
                continue
            row = {"provider": name, **size.to_dict(), "source": f"catalog {as_of(name)}"}
        if "error" in row:
            missing.append({**row, "title": entry.title})
            continue
        row.pop("regions", None)
        rows.append({**row, "title": entry.title, "usd": in_usd(row["monthly"], row["currency"])})
    return sorted(rows, key=lambda r: r["usd"]) + missing
