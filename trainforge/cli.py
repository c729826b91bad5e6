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
TASKS += ("sequence_classification", "sequence_regression", "generation")
# Turns an idle OpenMP thread of GNU libgomp spins before it sleeps (see openmp_waits).
SPIN_TURNS = 10_000


def main(argv: list[str] | None = None) -> int:
    openmp_waits(os.environ)
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


def openmp_waits(env) -> None:
    """How this command's OpenMP threads wait for work, set in ``env`` before any OpenMP
    library loads, unless the user set either variable (for this process only).

    OpenMP threads spin on their core while they wait, by default for up to about 3 ms (GNU
    libgomp's 300,000 turns), which starves other processes and, beside them, each other:
    next to two CPU-bound processes one LightGBM fit on 2 threads was not done after 120 s
    against 1.5 s on one. Not spinning at all (``OMP_WAIT_POLICY=PASSIVE``) puts every waiting
    thread to sleep at every barrier, and waking it costs more than the work between barriers:
    on a quiet 2-core virtual machine that fit took 4.2 s on 2 threads against 1.0 s on one.
    So waits are passive (for every OpenMP runtime) after a short spin in libgomp, the runtime
    of scikit-learn, LightGBM, XGBoost and PyTorch on Linux: SPIN_TURNS turns, about 0.1 ms,
    which keeps the quiet machine's speed (0.64 s on 2 threads). A short spin still costs
    when the cores get busy during a 2-thread fit (XGBoost: 5.6 s against 1.2 s passive);
    fits that start on a busy machine run on one thread (trainforge.threads), where the wait
    policy does not matter. Measurements: benchmarks/RESULTS.md, "OpenMP waits".
    """
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env["GOMP_SPINCOUNT"] = str(SPIN_TURNS)


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
    _reading_flags(train)
    train.add_argument("--task", choices=TASKS, help="default: inferred from the target")
    train.add_argument(
        "--positive-class", metavar="LABEL", help="binary tasks: the class ROC AUC and F1 score"
    )
    train.add_argument(
        "--device", help="auto (default: the first CUDA GPU if any), cpu, cuda or cuda:N"
    )
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
    train.add_argument(
        "--export", choices=["onnx"], help="also write the best model as model.onnx (verified)"
    )
    train.add_argument("--class-weight", choices=("auto", "balanced", "none"), help="default auto")
    train.add_argument("--threshold", choices=("auto", "tuned", "none"), help="binary decision")
    train.add_argument("--threshold-metric", choices=("f1", "balanced_accuracy", "mcc"))
    train.add_argument("--resample", choices=("none", "smote", "under", "over"), help="off")
    train.add_argument(
        "--time-limit", metavar="T", help="bound the run (90s, 10m, 1h) and search within it"
    )
    train.add_argument("--trials", type=int, metavar="N", help="search trials after the portfolio")
    train.add_argument(
        "--ray",
        nargs="?",
        const=True,
        metavar="ADDRESS",
        help="run candidates and trials as Ray tasks (on the cluster at ADDRESS, or auto; "
        "default: RAY_ADDRESS, else a private Ray on this machine)",
    )
    train.add_argument(
        "--workers", type=int, metavar="N", help="candidates or trials at once (default: per CPU)"
    )
    train.add_argument(
        "--data-parallel",
        type=int,
        metavar="N",
        help="with --ray: train each neural net on N Ray Train workers",
    )
    train.add_argument("--quiet", action="store_true", help="print only notices and results")
    train.add_argument("--wide", action="store_true", help="show every column of the leaderboard")
    _monitoring_flags(train)
    train.set_defaults(handler=_train)

    resume = commands.add_parser("resume", help="continue an interrupted or failed run")
    resume.add_argument("run", help="a run folder, run id, id prefix, or 'latest'")
    resume.add_argument("--out", default="runs", help="runs folder (default: runs)")
    resume.add_argument("--quiet", action="store_true", help="print only notices and results")
    resume.add_argument("--wide", action="store_true", help="show every column of the leaderboard")
    _monitoring_flags(resume)
    resume.set_defaults(handler=_resume)

    predict = commands.add_parser("predict", help="predict with a saved model or a run's best")
    predict.add_argument("model", help="a model folder, a run folder, or a run id")
    predict.add_argument("data", help="rows like the training file (extra columns ignored)")
    predict.add_argument(
        "-o", "--output", help="file to write: .csv, .tsv or .parquet (default: CSV to stdout)"
    )
    _reading_flags(predict)
    predict.add_argument(
        "--verify-key", metavar="FILE", help="refuse the model unless signed with this key"
    )
    predict.add_argument(
        "--trust",
        metavar="LIST",
        help="packages (or type names) whose classes the model may hold: your own estimators'",
    )
    predict.add_argument("--out", default="runs", help="runs folder for run ids (default: runs)")
    predict.set_defaults(handler=_predict)

    sample = commands.add_parser(
        "sample", help="new rows or images from a generation run (docs/generation.md)"
    )
    sample.add_argument("model", help="a generation run folder, run id, or model folder")
    sample.add_argument("-n", type=int, required=True, help="how many rows or images")
    sample.add_argument(
        "-o", "--output", required=True,
        help="rows: .csv, .tsv or .parquet; images: .png (a grid, and the images as an .npz "
        "beside it) or .npz",
    )  # fmt: skip
    sample.add_argument("--seed", type=int, default=0, help="the same seed, the same samples")
    sample.add_argument("--out", default="runs", help="runs folder for run ids (default: runs)")
    sample.set_defaults(handler=_sample)

    sign = commands.add_parser("sign", help="sign a saved model with a key you hold (HMAC)")
    sign.add_argument("model", help="a model folder, a run folder, or a run id")
    sign.add_argument("--key", required=True, metavar="FILE", help="the key file (16+ bytes)")
    sign.add_argument("--out", default="runs", help="runs folder for run ids (default: runs)")
    sign.set_defaults(handler=_sign)

    export = commands.add_parser(
        "export", help="a model as one ONNX graph, verified against it (docs/export.md)"
    )
    export.add_argument("model", help="a run folder, a run id, or a model folder")
    export.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    export.add_argument("--format", default="onnx", choices=["onnx"], help="(only onnx)")
    export.add_argument(
        "--rows", metavar="FILE", help="rows to verify on (default: the run's training file)"
    )
    export.add_argument("--out", default="runs", help="runs folder for run ids (default: runs)")
    export.set_defaults(handler=_export)

    runs = commands.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--out", default="runs", help="runs folder (default: runs)")
    runs.add_argument(
        "--wide", action="store_true", help="every column: task, creation time, the whole error"
    )
    runs.set_defaults(handler=_runs)

    show = commands.add_parser("show", help="a run's leaderboard and details")
    show.add_argument("run", help="a run folder, run id, id prefix, or 'latest'")
    show.add_argument("--out", default="runs", help="runs folder (default: runs)")
    show.add_argument(
        "--wide", action="store_true", help="every column of the leaderboard, whole fingerprints"
    )
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


def _reading_flags(command) -> None:
    command.add_argument(
        "--sep", help="the CSV's separator, e.g. ';' or tab (default: sniffed from the file)"
    )
    command.add_argument(
        "--decimal", choices=(".", ","), help="decimal mark of numbers (default: sniffed)"
    )


def _models_flag(value: str | None) -> list[str] | None:
    """``--models a,b``; a flag that names no model (``--models ,``) is refused rather than
    read as the default ladder."""
    if value is None:
        return None
    names = [m.strip() for m in value.split(",") if m.strip()]
    if not names:
        from trainforge.errors import SpecError

        raise SpecError(f"--models {value!r} names no model; give families like ridge,lightgbm")
    return names


def _separator(value: str | None) -> str | None:
    """``--sep``: one character, with ``tab`` and ``\\t`` for a tab."""
    if value is None:
        return None
    value = {"tab": "\t", "\\t": "\t"}.get(value.lower(), value)
    if len(value) != 1:
        from trainforge.errors import SpecError

        raise SpecError(f"--sep: expected one character (or tab), got {value!r}")
    return value


def _monitoring_flags(command) -> None:
    command.add_argument(
        "--log-format",
        choices=("rich", "plain", "json"),
        default="rich",
        help="progress as rich (on a terminal), plain lines, or JSON lines (default: rich)",
    )
    command.add_argument("--no-tracking", action="store_true", help="do not log to any tracker")
    command.add_argument(
        "--tracking-uri", metavar="URI", help="MLflow tracking URI (default: runs/mlflow.db)"
    )
    command.add_argument(
        "--track",
        metavar="LIST",
        help="the trackers to log to, from mlflow, wandb, tensorboard (default: mlflow)",
    )


def _observer(args):
    if args.log_format == "json":
        from trainforge.jsonlog import JsonObserver

        return JsonObserver(quiet=args.quiet)
    from trainforge.console import ConsoleObserver

    return ConsoleObserver(quiet=args.quiet, plain=args.log_format == "plain")


def _tracking(args) -> dict:
    return {
        "tracking": False if args.no_tracking else None,
        "tracking_uri": args.tracking_uri,
        "track": args.track,
    }


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
        "sep": _separator(args.sep),
        "decimal": args.decimal,
        "target": args.target,
        "positive_class": args.positive_class,
        "labels": args.labels,
        "task": args.task,
        "models": _models_flag(args.models),
        "metric": args.metric,
        "seed": args.seed,
        "output": args.out,
        "name": args.name,
        "folds": args.cv,
        "validation_fraction": args.validation_fraction,
        "columns": _roles(args.role) or None,
        "ensemble": False if args.no_ensemble else None,
        "export": args.export,
        "device": args.device,
        "imbalance": _imbalance(args),
        **_tracking(args),
        "time_limit": args.time_limit,
        "trials": args.trials,
        "ray": args.ray,
        "workers": args.workers,
        "data_parallel": args.data_parallel,
    }
    from trainforge.clock import process_started

    spec = build_spec(args.source if is_spec else None, **settings)
    result = execute(spec, observer=_observer(args), started=process_started())
    _report(result, wide=args.wide)
    return 0


def _resume(args) -> int:
    from trainforge.clock import process_started
    from trainforge.run import resume
    from trainforge.rundir import find_run

    path = find_run(args.run, Path(args.out))
    observer = _observer(args)
    result = resume(path, observer=observer, tracking=_tracking(args), started=process_started())
    _report(result, wide=args.wide)
    return 0


def _report(result, wide: bool = False) -> None:
    from trainforge.console import print_leaderboard
    from trainforge.rundir import read_manifest

    manifest = read_manifest(result.path)
    task, primary = manifest.get("task"), manifest.get("primary_metric")
    print_leaderboard(result.leaderboard, primary, task, wide)
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
    import warnings

    from trainforge.api import load
    from trainforge.data.read import read_table
    from trainforge.errors import UnseenValueWarning
    from trainforge.rundir import MANIFEST, find_run

    source = Path(args.model)
    if not (source / "bundle.json").is_file() and not (source / MANIFEST).is_file():
        source = find_run(args.model, Path(args.out))
    writer = _writer(args.output)  # a bad output is refused before any work
    trust = [name.strip() for name in args.trust.split(",")] if args.trust else None
    model = load(source, key=args.verify_key, trust=trust)
    rows = read_table(args.data, _separator(args.sep), args.decimal)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnseenValueWarning)
        predictions = model.predict_frame(rows)
    for item in caught:
        if issubclass(item.category, UnseenValueWarning):
            print(f"note: {item.message}", file=sys.stderr)
    if args.output:
        _written(lambda: writer(predictions, args.output), args.output)
        print(f"wrote {len(predictions)} predictions to {args.output}", file=sys.stderr)
    else:
        predictions.to_csv(sys.stdout, index=False)
    return 0


def _sample(args) -> int:
    from trainforge.api import load
    from trainforge.errors import DataError, SpecError
    from trainforge.generation.model import GenerativeModel
    from trainforge.rundir import MANIFEST, find_run

    source = Path(args.model)
    if not (source / "bundle.json").is_file() and not (source / MANIFEST).is_file():
        source = find_run(args.model, Path(args.out))
    if args.n < 1:
        raise SpecError(f"-n {args.n}: give how many samples to draw, 1 or more")
    suffix = Path(args.output).suffix.lower()
    images = suffix in (".png", ".npz")
    writer = None if images else _writer(args.output)  # a bad output is refused before work
    model = load(source)
    if not isinstance(model, GenerativeModel):
        raise DataError(f"{source} holds a {model.task} model; sample draws from a generation run")
    if images and model.image_shape is None:
        raise SpecError(f"-o {args.output}: this model generates table rows; name a .csv file")
    if not images:
        rows = model.sample(args.n, args.seed)
        _written(lambda: writer(rows, args.output), args.output)
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
        return 0
    from trainforge.generation.images import write_images

    files: list[Path] = []
    _written(lambda: files.extend(write_images(model, args.n, args.seed, args.output)), args.output)
    print(f"wrote {args.n} images to {', '.join(map(str, files))}", file=sys.stderr)
    return 0


def _sign(args) -> int:
    from trainforge.api import sign
    from trainforge.rundir import MANIFEST, find_run

    source = Path(args.model)
    if not (source / "bundle.json").is_file() and not (source / MANIFEST).is_file():
        source = find_run(args.model, Path(args.out))
    folder = sign(source, args.key)
    print(f"signed {folder} (signature.json); load it with --verify-key {args.key}")
    return 0


def _export(args) -> int:
    from trainforge.data.read import read_table
    from trainforge.errors import DataError
    from trainforge.onnx_export import export
    from trainforge.rundir import MANIFEST, find_run

    source = Path(args.model)
    if not (source / "bundle.json").is_file() and not (source / MANIFEST).is_file():
        source = find_run(args.model, Path(args.out))
    rows = read_table(Path(args.rows)) if args.rows else None
    try:
        import onnxmltools  # noqa: F401
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        raise DataError('export needs the onnx extra: pip install "trainforge[onnx]"') from None
    manifest = export(source, args.output, rows)
    check = manifest["verification"]
    print(
        f"wrote {args.output} ({', '.join(manifest['families'])}, {manifest['parts']} part(s)); "
        f"verified on {check['rows']} rows: largest difference {check['max_difference']:.2g}, "
        f"labels agree {check['labels_agree']:.0%}; manifest {args.output}.json"
    )
    return 0


def _written(write, output) -> None:
    """Run ``write``; a place that cannot be written (a folder, a read-only or missing folder)
    is one line, not a traceback."""
    from trainforge.errors import SpecError

    target = Path(output)
    if target.is_dir():
        raise SpecError(f"{output} is a folder; name a file to write, such as {target / 'out.csv'}")
    if not target.parent.is_dir():
        raise SpecError(f"cannot write {output}: its folder {target.parent} does not exist")
    try:
        write()
    except OSError as exc:
        raise SpecError(f"cannot write {output}: {exc.strerror or exc}") from None


def _writer(output: str | None):
    """How ``-o`` is written, by its extension: CSV, TSV or Parquet; anything else is refused."""
    from trainforge.atomic import write_bytes, write_text
    from trainforge.errors import SpecError

    if output is None:
        return None
    suffix = Path(output).suffix.lower()
    if suffix == ".csv":
        return lambda frame, path: write_text(path, frame.to_csv(index=False))
    if suffix == ".tsv":
        return lambda frame, path: write_text(path, frame.to_csv(index=False, sep="\t"))
    if suffix in (".parquet", ".pq"):
        return lambda frame, path: write_bytes(path, frame.to_parquet(index=False))
    raise SpecError(
        f"-o {output}: cannot write {suffix or 'a file without an extension'}; "
        "name a .csv, .tsv or .parquet file"
    )


def _runs(args) -> int:
    from trainforge.console import print_runs
    from trainforge.rundir import list_runs

    runs = list_runs(Path(args.out))
    if not runs:
        print(f"no runs under {args.out}")
        return 0
    print_runs(runs, wide=args.wide)
    return 0


def _show(args) -> int:
    import json

    import pandas as pd

    from trainforge.console import print_leaderboard
    from trainforge.rundir import find_run, read_manifest

    path = find_run(args.run, Path(args.out))
    manifest = read_manifest(path)
    print(f"run {manifest['id']}: {manifest['status']}  ({path})")
    if manifest.get("error"):
        print(f"  error: {manifest['error']}")  # why it failed, in full
    for saved in sorted((path / "candidates").glob("*/metrics.json")):
        try:
            record = json.loads(saved.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("status", "ok") != "ok":
            trace = saved.parent / "error.txt"
            where = f" (traceback: {trace})" if trace.is_file() else ""
            print(f"  failed: {saved.parent.name}: {record.get('error')}{where}")
    for key in ("task", "primary_metric", "seed", "created", "seconds"):
        if manifest.get(key) is not None:
            print(f"  {key}: {manifest[key]}")
    for role, item in (manifest.get("inputs") or {}).items():
        digest = item["fingerprint"] if args.wide else str(item["fingerprint"])[:19]
        print(f"  {role}: {item['path'] or '(in-memory frame)'}  {digest}")
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
        primary, task = manifest.get("primary_metric"), manifest.get("task")
        print_leaderboard(pd.read_csv(board), primary, task, args.wide)
    return 0


def _write_report(args) -> int:
    from trainforge.report import write_report
    from trainforge.rundir import find_run

    run = find_run(args.run, Path(args.out))
    if args.output is None:
        path = write_report(run)
    else:
        found = []
        _written(lambda: found.append(write_report(run, args.output)), args.output)
        path = found[0]
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
                "proba": _probabilities(family),  # short headers leave the settings room
                "weights": "yes" if family.sample_weight else "",
                "initial settings": family.initial_doc,
            }
        )
    print_table(pd.DataFrame(rows), title="model families (proba: class probabilities)")
    return 0


def _probabilities(family) -> str:
    """Class probabilities are a classifier's: ``-`` for families that classify nothing."""
    if "classification" not in family.classes:
        return "-"
    return "yes" if family.probabilities else "no"


def _version() -> str:
    from trainforge import __version__

    return f"trainforge {__version__}"


if __name__ == "__main__":
    sys.exit(main())
