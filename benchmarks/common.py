"""What every benchmark report says about the machine it ran on."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version


def proc_field(path: str, key: str) -> str:
    """The value of the first ``key: value`` line of a /proc file ("" if absent)."""
    with open(path) as handle:
        for line in handle:
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    return ""


def versions(names: list[str]) -> str:
    """``name version`` for each package, ``(not installed)`` where it is missing."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def machine_line() -> str:
    """Cores, CPU model, memory and operating system, as one Markdown list item."""
    cpu = proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    ram = int(proc_field("/proc/meminfo", "MemTotal").split()[0]) / 1024**2
    cores = len(os.sched_getaffinity(0))
    system = f"{platform.system()} {platform.release()}"
    return f"- Machine: {cores} cores (nproc), {cpu}, {ram:.1f} GiB RAM, {system}"


def replace_section(path, heading: str, text: str) -> None:
    """Put ``text`` (starting with ``heading``) in the Markdown file at ``path`` in place of the
    section under that heading, or at the end when there is none."""
    current = path.read_text()
    if heading in current:
        before, after = current.split(heading, 1)
        rest = after.split("\n## ", 1)
        current = before + text + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current)


def cross_validated_run(data, target: str, task: str, model, output):
    """One trainforge candidate (``model``: a name or a settings mapping), 5-fold
    cross-validated through ``trainforge.train`` with seed 0 into ``output``: no ensemble, no
    tracking, nothing printed. Returns the run's result."""
    import trainforge

    return trainforge.train(
        data=data,
        target=target,
        task=task,
        models=[model],
        folds=5,
        ensemble=False,
        seed=0,
        output=output,
        tracking=False,
        quiet=True,
    )
