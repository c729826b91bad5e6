"""The ``trainforge`` command. Thin: parse flags, build a RunSpec or find a run, call the library.

Heavy libraries are imported inside the command functions, so ``trainforge --help`` is fast.
Errors from bad input print one line and exit with code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROLES = ("numeric", "categorical", "boolean", "datetime", "text", "sequence", "ignore")
TASKS = ("auto", "binary", "multiclass", "regression", "clustering", "reduction")
TASKS += ("image_classification", "text_classification", "text_regression")
TASKS += ("sequence_classification", "sequence_regression")


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that wait for work spin on their core by default, which starves other
    # processes and, on a busy machine, each other; this process waits passively instead. Set
    # before any OpenMP library loads, for the command's own process only.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from trainforge.errors import TrainforgeError

    try:
        return args.handler(args) or 0
    except TrainforgeError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``trainforge`` command's entry point: ``main``, then a quick exit.

    Tearing down the interpreter after a run takes about a second (torch, scikit-learn and
    MLflow free their modules one by one), which a time limit on the command would pay for. By
    then every file is written and synced and the tracking run is closed, so the exit handlers
    run, the output is flushed, and the process ends without the teardown.
    """
    import atexit

    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class _Parser(argparse.ArgumentParser):
    """argparse with bad-flag errors in the same one-line form as every other error."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trainforge", description="Build, train and compare models on prepared data."
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train candidates and print the leaderboard")
    train.add_argument(
        "source", help="a YAML spec, a data file (CSV, TSV, .gz, Parquet, npz), or images"
    )
    train.add_argument("--target", help="target column (required with a data file)")
    train.add_argument("--labels", help="clustering/reduction: a column to score against only")
    train.add_argument("--validation", help="validation file instead of a holdout split")
    train.add_argument("--task", choices=TASKS, help="default: inferred from the target")
    train.add_argument("--models", help="comma-separated families (default: the ladder)")
    train.add_argument("--metric", help="primary metric (default: per task)")
    train.add_argument("--seed", type=int, help="one seed for everything (default 0)")
    train.add_argument("--out", help="runs folder (default: runs)")
    train.add_argument("--name", help="a short name for the run folder")
    train.add_argument("--cv", type=int, metavar="K", help="k-fold cross-validation")
    train.add_argument("--validation-fraction", type=float, metavar="F", help="holdout share")
    train.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="COL=ROLE",
        help=f"set a column's role ({', '.join(ROLES)}); repeatable",
    )
    train.add_argument(
        "--no-ensemble", action="store_true", help="do not add an ensemble of the candidates"
    )
    train.add_argument("--class-weight", choices=("auto", "balanced", "none"), help="default auto")
    train.add_argument("--threshold", choices=("auto", "tuned", "none"), help="binary decision")
    train.add_argument("--threshold-metric", choices=("f1", "balanced_accuracy", "mcc"))
    train.add_argument("--resample", choices=("none", "smote", "under", "over"), help="off")
    train.add_argument(
        "--time-limit", metavar="T", help="bound the run (90s, 10m, 1h) and search within it"
    )
    train.add_argument("--trials", type=int, metavar="N", help="search trials after the portfolio")
    train.add_argument("--quiet", action="store_true", help="print only notices and results")
    _monitoring_flags(train)
    train.set_defaults(handler=_train)

    resume = commands.add_parser("resume", help="continue an interrupted or failed run")
    resume.add_argument("run", help="a run folder, run id, id prefix, or 'latest'")
    resume.add_argument("--out", default="runs", help="runs folder (default: runs)")
    resume.add_argument("--quiet", action="store_true", help="print only notices and results")
    _monitoring_flags(resume)
    resume.set_defaults(handler=_resume)

    predict = commands.add_parser("predict", help="predict with a saved model or a run's best")
    predict.add_argument("model", help="a model folder, a run folder, or a run id")
    predict.add_argument("data", help="rows like the training file (extra columns ignored)")
    predict.add_argument("-o", "--output", help="CSV to write (default: standard output)")
    predict.add_argument("--out", default="runs", help="runs folder for run ids (default: runs)")
    predict.set_defaults(handler=_predict)

    runs = commands.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--out", default="runs", help="runs folder (default: runs)")
    runs.set_defaults(handler=_runs)

    show = commands.add_parser("show", help="a run's leaderboard and details")
    show.add_argument("run", help="a run folder, run id, id prefix, or 'latest'")
    show.add_argument("--out", default="runs", help="runs folder (default: runs)")
    show.set_defaults(handler=_show)

    report = commands.add_parser("report", help="write a run's HTML report (plots embedded)")
    report.add_argument("run", help="a run folder, run id, id prefix, or 'latest'")
    report.add_argument("-o", "--output", help="HTML file to write (default: RUN/report.html)")
    report.add_argument("--out", default="runs", help="runs folder (default: runs)")
    report.set_defaults(handler=_write_report)

    compare = commands.add_parser("compare", help="what differs between two runs")
    compare.add_argument("run_a", help="a run folder, run id, id prefix, or 'latest'")
    compare.add_argument("run_b", help="a run folder, run id, id prefix, or 'latest'")
    compare.add_argument("--out", default="runs", help="runs folder (default: runs)")
    compare.set_defaults(handler=_compare)

    models = commands.add_parser("models", help="the model catalogue with initial settings")
    models.add_argument("--task", choices=TASKS[1:], help="only families supporting this task")
    models.set_defaults(handler=_models)
    return parser


def _monitoring_flags(command) -> None:
    command.add_argument(
        "--log-format",
        choices=("rich", "plain", "json"),
        default="rich",
        help="progress as rich (on a terminal), plain lines, or JSON lines (default: rich)",
    )
    command.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    command.add_argument(
        "--tracking-uri", metavar="URI", help="MLflow tracking URI (default: runs/mlflow.db)"
    )


def _observer(args):
    if args.log_format == "json":
        from trainforge.jsonlog import JsonObserver

        return JsonObserver(quiet=args.quiet)
    from trainforge.console import ConsoleObserver

    return ConsoleObserver(quiet=args.quiet, plain=args.log_format == "plain")


def _tracking(args) -> dict:
    return {"tracking": False if args.no_tracking else None, "tracking_uri": args.tracking_uri}


def _train(args) -> int:
    from trainforge.data.images import is_image_source
    from trainforge.errors import SpecError
    from trainforge.run import execute
    from trainforge.spec import build_spec

    is_spec = Path(args.source).suffix.lower() in (".yaml", ".yml")
    images = args.task == "image_classification" or is_image_source(args.source, args.task)
    unsupervised = args.task in ("clustering", "reduction")
    if not is_spec and not args.target and not images and not unsupervised:
        raise SpecError("train: a data file needs --target COLUMN (or give a YAML spec)")
    settings = {
        "train": None if is_spec else args.source,
        "validation": args.validation,
        "target": args.target,
        "labels": args.labels,
        "task": args.task,
        "models": [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
        "metric": args.metric,
        "seed": args.seed,
        "output": args.out,
        "name": args.name,
        "folds": args.cv,
        "validation_fraction": args.validation_fraction,
        "columns": _roles(args.role) or None,
        "ensemble": False if args.no_ensemble else None,
        "imbalance": _imbalance(args),
        **_tracking(args),
        "time_limit": args.time_limit,
        "trials": args.trials,
    }
    from trainforge.clock import process_started

    spec = build_spec(args.source if is_spec else None, **settings)
    _report(execute(spec, observer=_observer(args), started=process_started()))
    return 0


def _resume(args) -> int:
    from trainforge.clock import process_started
    from trainforge.run import resume
    from trainforge.rundir import find_run

    path = find_run(args.run, Path(args.out))
    _report(
        resume(path, observer=_observer(args), tracking=_tracking(args), started=process_started())
    )
    return 0


def _report(result) -> None:
    from trainforge.console import board_title, print_table
    from trainforge.rundir import read_manifest

    task = read_manifest(result.path).get("task")
    print_table(result.leaderboard, title=board_title(task))
    print(f"best: {result.best_name}")
    if (result.path / "report.html").is_file():
        print(f"report: {result.path / 'report.html'}")
    print(f"run: {result.path}")  # the last line: scripts read the run folder from it


def _imbalance(args) -> dict | None:
    keys = ("class_weight", "threshold", "threshold_metric", "resample")
    chosen = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    return chosen or None


def _roles(pairs: list[str]) -> dict[str, str]:
    from trainforge.errors import SpecError

    roles = {}
    for pair in pairs:
        column, sep, role = pair.rpartition("=")
        if not sep or not column:
            raise SpecError(f"--role {pair!r}: expected COLUMN=ROLE, e.g. zip=categorical")
        roles[column] = role
    return roles


def _predict(args) -> int:
    from trainforge.api import load
    from trainforge.atomic import write_text
    from trainforge.rundir import MANIFEST, find_run

    source = Path(args.model)
    if not (source / "bundle.json").is_file() and not (source / MANIFEST).is_file():
        source = find_run(args.model, Path(args.out))
    predictions = load(source).predict_frame(args.data)
    if args.output:
        write_text(args.output, predictions.to_csv(index=False))
        print(f"wrote {len(predictions)} predictions to {args.output}", file=sys.stderr)
    else:
        predictions.to_csv(sys.stdout, index=False)
    return 0


def _runs(args) -> int:
    import pandas as pd

    from trainforge.console import print_table
    from trainforge.rundir import list_runs

    rows = []
    for path, manifest in list_runs(Path(args.out)):
        best = manifest.get("best") or {}
        metric = manifest.get("primary_metric")
        rows.append(
            {
                "run": path.name,
                "status": manifest.get("status"),
                "task": manifest.get("task", "-"),
                "best": best.get("candidate", "-"),
                "metric": metric or "-",
                "score": best.get(metric, float("nan")) if metric else float("nan"),
                "created": manifest.get("created", "-"),
            }
        )
    if not rows:
        print(f"no runs under {args.out}")
        return 0
    print_table(pd.DataFrame(rows))
    return 0


def _show(args) -> int:
    import pandas as pd

    from trainforge.console import board_title, print_table
    from trainforge.rundir import find_run, read_manifest

    path = find_run(args.run, Path(args.out))
    manifest = read_manifest(path)
    print(f"run {manifest['id']}: {manifest['status']}  ({path})")
    for key in ("task", "primary_metric", "seed", "created", "seconds", "error"):
        if manifest.get(key) is not None:
            print(f"  {key}: {manifest[key]}")
    for role, item in (manifest.get("inputs") or {}).items():
        print(f"  {role}: {item['path'] or '(in-memory frame)'}  {item['fingerprint']}")
    code = manifest.get("code")
    if code:
        print(f"  code: {code['commit'][:12]}{' (dirty)' if code['dirty'] else ''}")
    for notice in manifest.get("notices", []):
        print(f"  note: {notice}")
    for warning in manifest.get("warnings", []):
        print(f"  warning: {warning}")
    _show_tracking(path)
    board = path / "leaderboard.csv"
    if board.is_file():
        print_table(pd.read_csv(board), title=board_title(manifest.get("task")))
    return 0


def _write_report(args) -> int:
    from trainforge.report import write_report
    from trainforge.rundir import find_run

    path = write_report(find_run(args.run, Path(args.out)), args.output)
    print(f"report: {path}")
    return 0


def _compare(args) -> int:
    from trainforge.compare import compare_runs
    from trainforge.console import print_table
    from trainforge.rundir import find_run

    a, b = find_run(args.run_a, Path(args.out)), find_run(args.run_b, Path(args.out))
    print(f"a: {a}\nb: {b}")
    found = compare_runs(a, b)
    if found["spec"].empty:
        print("spec: the same resolved settings")
    else:
        print_table(found["spec"], title="spec settings that differ")
    print_table(found["records"], title="data, code and versions")
    if found["scores"].empty:
        print("scores: not comparable (different primary metrics, or no leaderboard)")
    else:
        print_table(found["scores"], title="validation scores")
    return 0


def _show_tracking(path: Path) -> None:
    """Where the run's report and MLflow records are."""
    import json

    if (path / "report.html").is_file():
        print(f"  report: {path / 'report.html'}")
    if (path / "tracking.json").is_file():
        info = json.loads((path / "tracking.json").read_text())
        print(f"  mlflow: run {info.get('run')} at {info.get('uri')}")


def _models(args) -> int:
    import pandas as pd

    from trainforge.console import print_table
    from trainforge.models.registry import families

    rows = []
    for family in families():
        if args.task and not family.supports(args.task, args.task == "image_classification"):
            continue
        rows.append(
            {
                "name": family.name,
                "tasks": ", ".join(sorted(family.classes)),
                "ladder": "yes" if family.ladder is not None else "",
                "probabilities": "yes" if family.probabilities else "",
                "sample weights": "yes" if family.sample_weight else "",
                "initial settings": family.initial_doc,
            }
        )
    print_table(pd.DataFrame(rows), title="model families")
    return 0


def _version() -> str:
    from trainforge import __version__

    return f"trainforge {__version__}"


if __name__ == "__main__":
    sys.exit(main())
