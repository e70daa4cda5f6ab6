"""``dangol analytics refresh`` and ``dangol analytics clv-fit PATH``.

- ``refresh [--as-of YYYY-MM-DD] [--discount-rate R] [--horizon-days N]`` recomputes the metrics snapshot of every
  live customer (what the nightly job does) and prints a summary; the last line is one JSON object with the run.
- ``clv-fit PATH`` fits BG/NBD (and Gamma-Gamma when the file has ``monetary_value``) to a customer summary CSV with
  the columns ``customer_id,frequency,recency,T`` (frequency: repeat purchases; recency: time from the first to the
  last purchase; T: time from the first purchase to the end of the period, all in one unit) and prints as its last
  line one JSON object: ``r, alpha, a, b, ll`` (BG/NBD log-likelihood), ``customers``, and with monetary values
  ``p, q, gamma, gg_ll`` (Gamma-Gamma, on the customers with repeat purchases, as Fader & Hardie do) and
  ``gg_customers``. Bad input stops with one clear error line and a non-zero exit status.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from dangol.core.audit import Actor

REQUIRED = ("customer_id", "frequency", "recency", "T")
OPTIONAL = ("monetary_value",)
SHOWN_ROWS = 5


class Command(BaseCommand):
    help = "Customer analysis: refresh the metrics snapshot, or fit BG/NBD and Gamma-Gamma to a summary CSV."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True, metavar="{refresh,clv-fit}")
        refresh = commands.add_parser("refresh", help="recompute every live customer's metrics now",
                                      description="Recompute every live customer's metrics (RFM, BG/NBD, "
                                                  "Gamma-Gamma, CLV, churn risk, profitability, stage).")
        refresh.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day the metrics describe (default: today in Seoul)")
        refresh.add_argument("--discount-rate", type=float, metavar="R",
                             help="monthly discount rate of the 12-month CLV (default DANGOL_CLV_DISCOUNT_RATE_MONTHLY or 0.01)")
        refresh.add_argument("--horizon-days", type=int, metavar="N",
                             help="no purchase within N days counts as churn (default DANGOL_CHURN_HORIZON_DAYS or 180)")
        fit = commands.add_parser("clv-fit", help="fit BG/NBD (+ Gamma-Gamma) to a customer summary CSV",
                                  description="Fit BG/NBD and, with monetary_value, Gamma-Gamma by maximum likelihood "
                                              "to a CSV with columns customer_id,frequency,recency,T[,monetary_value].")
        fit.add_argument("path", metavar="PATH", help="the CSV file")

    def handle(self, *args, action: str, **options):
        if action == "refresh":
            self.refresh(options)
        else:
            self.clv_fit(options["path"])

    # --- refresh -------------------------------------------------------------------------------------------------

    def refresh(self, options) -> None:
        from dangol.analytics.services import RefreshInProgress, refresh_metrics

        as_of = None
        if options.get("as_of"):
            try:
                as_of = dt.date.fromisoformat(options["as_of"])
            except ValueError:
                raise CommandError(f"--as-of: “{options['as_of']}” is not a day in the form YYYY-MM-DD.")
        try:
            run = refresh_metrics(actor=Actor.system("cli"), as_of=as_of, discount_rate_monthly=options.get("discount_rate"),
                                  horizon_days=options.get("horizon_days"))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        except RefreshInProgress as exc:
            raise CommandError(str(exc))
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"The database could not be read or written: {first_line}")
        phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in run.details.get("phase_seconds", {}).items())
        self.stdout.write(f"{run.customers:,} customers as of {run.as_of} in {run.seconds:.1f}s ({phases}).")
        if run.bgnbd:
            b = run.bgnbd
            self.stdout.write(f"BG/NBD (days): r={b['r']:.4g} alpha={b['alpha']:.4g} a={b['a']:.4g} b={b['b']:.4g}.")
        if run.gamma_gamma:
            g = run.gamma_gamma
            self.stdout.write(f"Gamma-Gamma (KRW): p={g['p']:.4g} q={g['q']:.4g} gamma={g['gamma']:.4g}.")
        auc = lambda value: "n/a" if value is None else f"{value:.3f}"  # noqa: E731
        self.stdout.write(f"Churn AUC on the held-out period: model {auc(run.churn_auc)}, "
                          f"P(alive) baseline {auc(run.baseline_auc)}.")
        for note in filter(None, run.notes.splitlines()):
            self.stdout.write(note)
        self.stdout.write(json.dumps({
            "run": run.pk, "as_of": str(run.as_of), "customers": run.customers, "seconds": run.seconds,
            "bgnbd": run.bgnbd, "gamma_gamma": run.gamma_gamma, "churn_auc": run.churn_auc,
            "baseline_auc": run.baseline_auc, "discount_rate_monthly": run.discount_rate_monthly}))

    # --- clv-fit -------------------------------------------------------------------------------------------------

    def clv_fit(self, path: str) -> None:
        from dangol.analytics import clv

        columns = read_summary_csv(path)
        frequency, recency, age = columns["frequency"], columns["recency"], columns["T"]
        monetary = columns.get("monetary_value")
        try:
            clv.check_summary(frequency, recency, age, monetary)
            bg = clv.fit_bgnbd(frequency, recency, age)
            gg = clv.fit_gamma_gamma(frequency, monetary) if monetary is not None else None
        except clv.ModelError as exc:
            if exc.rows is not None:
                raise CommandError(f"{exc.problem}: {_lines(exc.rows)}.")
            raise CommandError(str(exc))
        self.stdout.write(f"BG/NBD on {bg.customers:,} customers ({int((frequency > 0).sum()):,} with repeat purchases): "
                          f"r={bg.r:.4f} alpha={bg.alpha:.4f} a={bg.a:.4f} b={bg.b:.4f}, log-likelihood {bg.ll:.2f}.")
        result = {"customers": bg.customers, "r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "ll": bg.ll}
        if gg is not None:
            self.stdout.write(f"Gamma-Gamma on the {gg.customers:,} customers with repeat purchases: p={gg.p:.4f} "
                              f"q={gg.q:.4f} gamma={gg.gamma:.4f}, log-likelihood {gg.ll:.2f}.")
            result.update({"p": gg.p, "q": gg.q, "gamma": gg.gamma, "gg_ll": gg.ll, "gg_customers": gg.customers})
        self.stdout.write(json.dumps(result))


def read_summary_csv(path: str) -> dict[str, np.ndarray]:
    """The numeric columns of a customer summary CSV (frequency, recency, T and monetary_value when present), or
    CommandError saying what is wrong and on which lines (line 1 is the header)."""
    import polars as pl

    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{path}: no such file.")
    raw = file.read_bytes()
    if not raw.strip():
        raise CommandError(f"{path}: the file is empty.")
    try:
        frame = pl.read_csv(raw, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=False)
    except Exception as exc:  # polars raises its own error types for malformed files
        raise CommandError(f"{path}: not a readable CSV file ({str(exc).strip().splitlines()[0]}).")
    names = {column.lstrip("\ufeff").strip(): column for column in frame.columns}
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise CommandError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED)} and "
                           f"optionally {','.join(OPTIONAL)}.")
    if frame.height == 0:
        raise CommandError(f"{path}: there are no customers (only a header).")
    ids = frame[names["customer_id"]].str.strip_chars()
    blank_ids = (ids.is_null() | (ids == "")).to_numpy()
    if blank_ids.any():
        raise CommandError(f"customer_id is missing: {_lines(np.flatnonzero(blank_ids))}.")
    duplicated = ids.is_duplicated().to_numpy()
    if duplicated.any():
        raise CommandError(f"customer_id appears more than once: {_lines(np.flatnonzero(duplicated))}.")
    columns = {}
    for name in REQUIRED[1:] + tuple(n for n in OPTIONAL if n in names):
        text = frame[names[name]].str.strip_chars()
        values = text.cast(pl.Float64, strict=False)
        # An empty monetary_value is allowed for customers without repeat purchases (the model does not use it).
        bad = (values.is_null() & ~(text.is_null() | (text == "")) if name in OPTIONAL else values.is_null()).to_numpy()
        if bad.any():
            raise CommandError(f"{name} is not a number: {_lines(np.flatnonzero(bad))}.")
        array = values.fill_null(np.nan).to_numpy().astype(float)
        if name != "monetary_value" and not np.all(np.isfinite(array)):
            raise CommandError(f"{name} is not a finite number: {_lines(np.flatnonzero(~np.isfinite(array)))}.")
        columns[name] = array
    return columns


def _lines(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(row) + 2) for row in rows[:SHOWN_ROWS])
    more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    return f"line{'s' if len(rows) > 1 else ''} {shown}{more}"
