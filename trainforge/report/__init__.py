"""The run report: one self-contained HTML file drawn from the run folder alone.

``write_report(run)`` reads manifest.json, spec.yaml, leaderboard.csv, a kept model's
bundle.json (the column roles) and each candidate's history.csv, predictions.parquet,
importance.csv and figures/*.png, and writes report.html with every image embedded as base64, so
the file can be mailed or archived on its own. It is written at the end of every run and again
by ``trainforge report RUN``.
"""

from __future__ import annotations

from trainforge.report.page import REPORT, write_report

__all__ = ["REPORT", "write_report"]
