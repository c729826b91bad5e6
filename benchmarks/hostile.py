"""The whole hostile-file corpus (issue 15): mutated bundles loaded in processes of their own,
mutated checkpoints resumed, and how each ended.

Bundles: every mutation of tests/hostile_corpus.py on every base bundle (a logistic regression,
a decision tree, a random forest, histogram boosting, LightGBM, an MLP, a bagged model, an
ensemble), several seeds each. Each is loaded and asked to predict in a process of its own: it
must be refused in one line (BundleError) or load and predict; a traceback or a signal is a crash.
Checkpoints: every checkpoint mutation on an interrupted MLP fit, several seeds each; resuming
must give exactly the weights of a fit never interrupted.

Usage:
    .venv/bin/python benchmarks/hostile.py --seeds 3 --checkpoint-seeds 30 --write
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from common import replace_section  # noqa: E402

import hostile_corpus as corpus  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Hostile bundles and checkpoints: how every load and resume ended"


def bundles(work: Path, seeds: int) -> list[tuple[str, str, str, corpus.Outcome]]:
    bases = corpus.base_bundles(work / "bases")
    rows = work / "bases" / "rows.csv"
    (work / corpus.OUTSIDE).write_text("outside\n")
    found = []
    for kind, base in bases.items():
        for mutation in corpus.BUNDLE_MUTATIONS:
            for seed in range(seeds):
                folder = work / kind
                bundle, said = corpus.mutated_bundle(base, folder, mutation, seed)
                outcome = corpus.load_in_child(bundle, rows)
                found.append((kind, mutation, said, outcome))
                print(f"{kind:9s} {mutation:13s} {outcome.kind:8s} {said}", flush=True)
    return found


def checkpoints(work: Path, seeds: int) -> list[tuple[str, corpus.Outcome]]:
    found = []
    for mutation in corpus.CHECKPOINT_MUTATIONS:
        for seed in range(seeds):
            outcome = corpus.resume_mutated(work, mutation, seed)
            found.append((mutation, outcome))
            print(f"checkpoint {mutation:9s} {outcome.kind:8s} {outcome.detail}", flush=True)
    return found


def table(bundle_rows, checkpoint_rows, seconds: float, args) -> str:
    by_mutation = collections.defaultdict(collections.Counter)
    for _, mutation, _, outcome in bundle_rows:
        by_mutation[mutation][outcome.kind] += 1
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/hostile.py --seeds {args.seeds} "
        f"--checkpoint-seeds {args.checkpoint_seeds} --write` ({seconds / 60:.0f} min; "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()})",
        "",
        "| bundle mutation | cases | refused in one line | loaded and predicted | crashed |",
        "|---|---:|---:|---:|---:|",
    ]
    for mutation, counts in by_mutation.items():
        total = sum(counts.values())
        lines.append(
            f"| {mutation} | {total} | {counts['refused']} | {counts['loaded']} "
            f"| {counts['crashed']} |"
        )
    totals = collections.Counter(o.kind for *_, o in bundle_rows)
    lines.append(
        f"| **all** | {len(bundle_rows)} | {totals['refused']} | {totals['loaded']} "
        f"| {totals['crashed']} |"
    )
    lines += [
        "",
        "| checkpoint mutation | cases | fell back, weights identical | refused in one line "
        "| resumed, other weights | crashed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_ckpt = collections.defaultdict(collections.Counter)
    for mutation, outcome in checkpoint_rows:
        by_ckpt[mutation][outcome.kind] += 1
    for mutation, counts in by_ckpt.items():
        total = sum(counts.values())
        lines.append(
            f"| {mutation} | {total} | {counts['fallback']} | {counts['refused']} "
            f"| {counts['wrong']} | {counts['crashed']} |"
        )
    crashes = [f"{k} {m}: {o.detail}" for k, m, _, o in bundle_rows if o.kind == "crashed"]
    wrong = [f"{m}: {o.kind} {o.detail}" for m, o in checkpoint_rows if o.kind == "crashed"]
    undetected = [o.detail for _, o in checkpoint_rows if o.kind == "wrong"]
    lines += [
        "",
        '"Loaded and predicted" are mutations that did not matter to the model (a byte of '
        "bundle.json outside any field it reads, a threshold) or that bundle.json's sha256 "
        "values cannot catch because they are not signed; a signed bundle refuses them "
        "(docs/runs.md).",
        "",
        '"Resumed, other weights" are checkpoints whose tensor values were changed and whose '
        "manifest was rewritten to match: the sha256 values of a checkpoint stop accidents, not "
        "someone who can write to the run folder, and a changed weight that keeps its shape is "
        f"a valid checkpoint ({len(undetected)} here: "
        + "; ".join(sorted(set(undetected))[:6])
        + ").",
        "",
    ]
    if crashes or wrong:
        lines += ["Not held:", ""] + [f"- {line}" for line in crashes + wrong] + [""]
    return "\n".join(lines)


def write(text: str) -> None:
    replace_section(RESULTS, SECTION, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per bundle mutation and base")
    parser.add_argument("--checkpoint-seeds", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        bundle_rows = bundles(work, args.seeds) if args.seeds else []
        checkpoint_rows = checkpoints(work / "checkpoints", args.checkpoint_seeds)
    text = table(bundle_rows, checkpoint_rows, time.monotonic() - started, args)
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
