"""Churn risk: a gradient-boosting classifier (scikit-learn's histogram gradient boosting) validated out of time.

Churn means: a customer who has bought makes no purchase in the next ``horizon`` days (180 by default,
``DANGOL_CHURN_HORIZON_DAYS``). With D the refresh day and H the horizon:

- **training set**: the customers who had bought by D − 2H, described as of D − 2H; label: no purchase in
  (D − 2H, D − H];
- **held-out set**: the customers who had bought by D − H (a random 200,000 of them when there are more),
  described as of D − H; label: no purchase in (D − H, D].
  The model never sees this later period while it learns: its AUC on it is what the dashboard shows, beside the
  AUC of the BG/NBD baseline — 1 − P(alive), with the BG/NBD fitted on the data as of D − H — on the very same
  customers, so a manager sees which of the two ranks churners better on their own data;
- **scores**: the same model applied to every buyer as of D gives ``churn_risk``, the probability of no purchase in
  the next H days. (The model that is scored is the one that was validated; it is not refitted on the held-out
  period.)

Features (all as of the cut-off): recency, frequency, orders, net spend and average order, tenure and time since the
first purchase, purchase days in the last 90 and 365 days, business units used and the spend mix by kind of unit,
refunds, complaints (case entries on the timeline) and the number of channels with marketing consent in force.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

BASE_FEATURES = ["recency_days", "frequency", "orders", "monetary", "monetary_avg", "tenure_days", "age_days",
                 "days_90", "days_365", "units_used", "refunds", "complaints", "consents"]
MAX_TRAINING_ROWS = 250_000  # a random sample above this: the fit stays within seconds at a million customers
MAX_EVALUATION_ROWS = 200_000
MIN_ROWS = 200
MIN_PER_CLASS = 20
RANDOM_STATE = 20240601


@dataclass
class ChurnResult:
    risk: np.ndarray | None  # per scored row, or None when there was too little history to train
    auc: float | None = None
    baseline_auc: float | None = None
    train_rows: int = 0
    test_rows: int = 0
    train_churn_rate: float | None = None
    test_churn_rate: float | None = None
    features: list[str] = field(default_factory=list)
    note: str = ""


def feature_names(kinds: list[str]) -> list[str]:
    return BASE_FEATURES + [f"share_{kind}" for kind in kinds]


def matrix(frame: pl.DataFrame, names: list[str]) -> np.ndarray:
    return frame.select([pl.col(name).cast(pl.Float32) for name in names]).to_numpy()


def train_and_score(*, train: pl.DataFrame, train_churned: np.ndarray, test: pl.DataFrame, test_churned: np.ndarray,
                    baseline_p_alive: np.ndarray | None, score: pl.DataFrame, names: list[str]) -> ChurnResult:
    """Fit on ``train``, measure on ``test`` (and the baseline on the same rows), score ``score``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    result = ChurnResult(risk=None, train_rows=train.height, test_rows=test.height, features=names)
    if train.height:
        result.train_churn_rate = float(np.mean(train_churned))
    if test.height:
        result.test_churn_rate = float(np.mean(test_churned))
    if not _enough(train_churned):
        result.note = (f"churn model not trained: too little history ({train.height} customers had bought by the "
                       f"training cut-off; at least {MIN_ROWS} are needed, {MIN_PER_CLASS} of each outcome)")
        return result
    x_train, y_train = matrix(train, names), np.asarray(train_churned, dtype=np.int8)
    if len(y_train) > MAX_TRAINING_ROWS:
        keep = np.sort(np.random.default_rng(RANDOM_STATE).choice(len(y_train), MAX_TRAINING_ROWS, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20,
                                           l2_regularization=1.0, early_stopping=len(y_train) > 10_000,
                                           random_state=RANDOM_STATE)
    # Training on one thread: OpenMP threads spin while they wait for each other after every small tree, and on a
    # busy two-core machine two threads took 25 s where one takes 5 s (250,000 rows). Prediction splits the rows
    # into large independent blocks and does gain from the second core.
    with threadpool_limits(limits=1):
        model.fit(x_train, y_train)
    test_x, test_y, test_baseline = matrix(test, names), np.asarray(test_churned), baseline_p_alive
    if len(test_y) > MAX_EVALUATION_ROWS:  # an AUC on 200,000 customers is as good as on a million (SE ≈ 0.001)
        keep = np.sort(np.random.default_rng(RANDOM_STATE + 1).choice(len(test_y), MAX_EVALUATION_ROWS, replace=False))
        test_x, test_y = test_x[keep], test_y[keep]
        test_baseline = None if baseline_p_alive is None else np.asarray(baseline_p_alive)[keep]
    result.test_rows = len(test_y)
    if len(test_y) and len(np.unique(test_y)) == 2:
        result.auc = float(roc_auc_score(test_y, model.predict_proba(test_x)[:, 1]))
        if test_baseline is not None:
            result.baseline_auc = float(roc_auc_score(test_y, 1.0 - np.asarray(test_baseline)))
    else:
        result.note = "no held-out AUC: the held-out period has customers of one outcome only"
    result.risk = model.predict_proba(matrix(score, names))[:, 1] if score.height else np.zeros(0)
    return result


def _enough(labels: np.ndarray) -> bool:
    labels = np.asarray(labels)
    churned = int(labels.sum())
    return len(labels) >= MIN_ROWS and churned >= MIN_PER_CLASS and len(labels) - churned >= MIN_PER_CLASS
