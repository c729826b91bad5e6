"""Regenerate the search-space table in docs/search.md from the registry, the spaces and the
learned portfolio.

python scripts/search_doc.py        # rewrite docs/search.md between the markers
"""

from __future__ import annotations

from pathlib import Path

from trainforge.models.registry import families
from trainforge.search.portfolio import portfolio

DOC = Path(__file__).resolve().parents[1] / "docs" / "search.md"
START, END = "<!-- spaces:start -->", "<!-- spaces:end -->"


def spaces() -> str:
    lines = ["| family | parameter | range | portfolio values |", "|---|---|---|---|"]
    entries = portfolio("binary") + portfolio("regression")
    for family in families():
        space = family.space
        if space is None:
            continue
        mine = [settings for name, settings in entries if name == family.name]
        for index, param in enumerate(space.params):
            where = f" ({param.tasks} only)" if param.tasks else ""
            tried = ", ".join(_short(entry[param.name]) for entry in mine if param.name in entry)
            name = f"`{family.name}`" if index == 0 else ""
            lines.append(f"| {name} | `{param.name}`{where} | {param.describe()} | {tried} |")
        extra = [f"{k}={v}" for k, v in space.fixed.items()]
        notes = "; ".join(part for part in [", ".join(extra), space.note] if part)
        if notes:
            lines.append(f"| | (every trial) | {notes} | |")
    return "\n".join(lines)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def render(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{spaces()}\n{END}{tail}"


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
