"""docs/limits.md names every bound and expiry in settings with its default value, so the doc
cannot fall behind: names and values are both compared."""

import re
from pathlib import Path

import pytest
from django.conf import settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "limits.md").read_text()
UNITS = {"KiB": 1024, "h": 3600, "min": 60, "s": 1, "days": 86400, "day": 86400}
ROW = re.compile(r"^\| (?P<names>`[^|]+) \| (?P<defaults>[^|]+) \|", re.MULTILINE)


def _value(text: str, table: dict) -> object:
    text = text.replace("(env)", "").strip()
    ref = re.fullmatch(r"= `([A-Z0-9_]+)`", text)
    if ref:
        return settings.LIMITS[ref.group(1)]
    if "," in text and not re.fullmatch(r"[\d,]+", text):
        return [_value(part, table) for part in text.split(",")]
    number, _, unit = text.partition(" ")
    return float(number.replace(",", "")) * UNITS.get(unit, 1)


def _documented(section: str) -> dict[str, object]:
    body = DOC.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    found: dict[str, object] = {}
    for row in ROW.finditer(body):
        names = re.findall(r"`([A-Z0-9_]+)`", row["names"])
        defaults = row["defaults"].split(" / ")
        assert len(defaults) == len(names), f"one default per name: {row.group(0)}"
        for name, default in zip(names, defaults, strict=True):
            found[name] = default
    return found


@pytest.mark.parametrize(("section", "table"), [("LIMITS", "LIMITS"), ("TTLS", "TTLS")])
def test_every_entry_is_documented_with_its_value(section, table):
    values = getattr(settings, table)
    documented = _documented(section)
    assert sorted(set(values) - set(documented)) == [], "undocumented"
    assert sorted(set(documented) - set(values)) == [], "documented but gone"
    wrong = {
        name: (documented[name], values[name])
        for name in values
        if _value(documented[name], values) != (
            [float(v) for v in values[name]] if isinstance(values[name], list)
            else float(values[name])
        )
    }  # fmt: skip
    assert wrong == {}
