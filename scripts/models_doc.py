"""Regenerate the catalogue table in docs/models.md from the registry.

python scripts/models_doc.py        # rewrite docs/models.md between the markers
"""

from __future__ import annotations

from pathlib import Path

from trainforge.models.registry import families

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"
START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def catalogue() -> str:
    lines = [
        "| name | tasks | ladder | estimator | initial settings |",
        "|---|---|---|---|---|",
    ]
    for f in families():
        classes = ", ".join(f"`{c.rsplit('.', 1)[1]}`" for c in f.classes.values())
        ladder = "yes" if f.ladder is not None else ""
        lines.append(
            f"| `{f.name}` | {', '.join(sorted(f.classes))} | {ladder} | {classes} | "
            f"{f.initial_doc} |"
        )
    return "\n".join(lines)


def render(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{catalogue()}\n{END}{tail}"


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
