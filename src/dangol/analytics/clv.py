"""Customer-base models of the literature, fitted by maximum likelihood with vectorised numpy and scipy.

- **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an alternative to the Pareto/NBD
  model", Marketing Science 24(2)): while alive, a customer buys at Poisson rate λ ~ Gamma(r, α); after every purchase
  they drop out with probability p ~ Beta(a, b). The data of a customer are ``x`` repeat purchases (frequency), the
  time ``t_x`` of the last one since the first purchase (recency) and the time ``T`` since the first purchase (age).
  On the paper's CDNOW sample (2,357 customers, weeks) the maximum is r = 0.243, α = 4.414, a = 0.793, b = 2.426,
  LL = −9,582.4.
- **Gamma-Gamma** (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"; first in Fader, Hardie & Lee
  2005, "RFM and CLV: using iso-value curves", JMR 42(4)): the value of each transaction is Gamma(p, ν) with
  ν ~ Gamma(q, γ) across customers; the data are ``x`` and the mean value ``m̄`` of the x repeat transactions. It is
  fitted on the customers with at least one repeat purchase (946 in CDNOW: p = 6.25, q = 3.74, γ = 15.44).

Time is in whatever unit the caller uses (the refresh uses days); α is in that unit. The BG/NBD likelihood works
on the distinct (x, t_x, T) rows with their counts (customers without repeat purchases by T alone), and its special
functions only depend on x, so a million customers cost a few hundred gammaln calls and a few passes over the
distinct rows per step. Gradients are analytic; BFGS runs on the logarithms of the parameters, first on a sample of
the rows and then, from there and with the curvature it learned, on all of them (a handful of full evaluations).
Predictions (P(alive), expected purchases, expected spend, lifetime value) are closed forms, with the hypergeometric
term evaluated once per distinct (x, T).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

DAYS_PER_MONTH = 365.25 / 12


class ModelError(ValueError):
    """The data cannot be fitted (bad values, too few repeat buyers, no convergence); the message says why and
    ``rows`` holds the 0-based positions of the offending rows, when it is about rows."""

    def __init__(self, message: str, rows: np.ndarray | None = None):
        super().__init__(message)
        self.problem = message
        self.rows = rows


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    ll: float
    customers: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    ll: float
    customers: int

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """E[M] across customers, pγ/(q−1) (infinite when q ≤ 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")


# --- input checks ---------------------------------------------------------------------------------------------------

def check_summary(frequency, recency, T, monetary=None) -> tuple[np.ndarray, ...]:
    """The summary as float arrays, or ModelError naming the first offending positions (0-based)."""
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    age = np.asarray(T, dtype=float)
    if not (x.shape == t_x.shape == age.shape) or x.ndim != 1:
        raise ModelError("frequency, recency and T must be columns of the same length")
    if x.size == 0:
        raise ModelError("there are no customers to fit")
    problems = [
        (~np.isfinite(x) | ~np.isfinite(t_x) | ~np.isfinite(age), "a value is missing or not a number"),
        ((x < 0) | (t_x < 0) | (age < 0), "frequency, recency and T cannot be negative"),
        (np.isfinite(x) & (x != np.round(x)), "frequency counts repeat purchases: a whole number"),
        (t_x > age, "recency cannot be greater than T"),
        ((x == 0) & (t_x != 0), "a customer without repeat purchases has recency 0"),
    ]
    for mask, message in problems:
        _raise_if(mask, message)
    arrays = [x, t_x, age]
    if monetary is not None:
        m = np.asarray(monetary, dtype=float)
        if m.shape != x.shape:
            raise ModelError("monetary_value must be a column of the same length")
        _raise_if(np.isfinite(m) & (m < 0), "monetary_value cannot be negative")
        _raise_if((x > 0) & ~(np.isfinite(m) & (m > 0)),
                  "a customer with repeat purchases needs a positive monetary_value (their mean repeat spend)")
        arrays.append(m)
    return tuple(arrays)


def _raise_if(mask: np.ndarray, message: str) -> None:
    if mask.any():
        where = np.flatnonzero(mask)
        shown = ", ".join(str(int(i)) for i in where[:5]) + (" …" if where.size > 5 else "")
        error = ModelError(f"{message} ({where.size} row(s), at positions {shown})", rows=where)
        error.problem = message
        raise error


# --- BG/NBD ---------------------------------------------------------------------------------------------------------

def fit_bgnbd(frequency, recency, T, *, weights=None) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters. ``weights`` (optional) counts customers per row."""
    x, t_x, age = check_summary(frequency, recency, T)
    if not (x > 0).any():
        raise ModelError("nobody bought twice: the model needs customers with repeat purchases")
    data = _BgNbdData(x, t_x, age, weights)

    def objective(sample):
        def negative_ll(log_params):
            params = np.exp(log_params)
            value, gradient = sample.log_likelihood(*params, gradient=True)
            return -value / sample.total, -gradient * params / sample.total  # d/d log θ = θ d/dθ
        return negative_ll

    scale = float(np.average(age, weights=None if weights is None else np.asarray(weights, dtype=float))) or 1.0
    step = len(data.n) // _WARM_START_ROWS
    best = _minimize(objective(data), np.log([1.0, scale, 1.0, 1.0]),
                     warm_up=objective(data.sample(step)) if step >= 4 else None)
    r, alpha, a, b = np.exp(best.x)
    return BgNbd(r=float(r), alpha=float(alpha), a=float(a), b=float(b), ll=float(-best.fun * data.total),
                 customers=int(round(data.total)))


_WARM_START_ROWS = 20_000


class _BgNbdData:
    """The summary compressed for the likelihood: customers without repeat purchases by T alone (their likelihood
    only depends on it), the others by distinct (x, t_x, T); the terms that depend on x, T or t_x alone are computed
    once per distinct value and gathered, so each evaluation costs a few passes over the distinct rows."""

    def __init__(self, x, t_x, age, weights):
        weights = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
        self.total = float(weights.sum())
        zero = x == 0
        self.zero_T, inverse = _unique(age[zero])
        self.zero_n = np.bincount(inverse.ravel(), weights=weights[zero], minlength=len(self.zero_T))
        rows, self.n = _distinct_rows(np.column_stack([x[~zero], t_x[~zero], age[~zero]]), weights[~zero])
        self.x = rows[:, 0]
        self.ux, self.ix = _unique(self.x)
        self.nx = np.bincount(self.ix, weights=self.n, minlength=len(self.ux))
        self.uT, self.iT = _unique(rows[:, 2])
        self.ut, self.it = _unique(rows[:, 1])
        self.n_zero, self.n_repeat = float(self.zero_n.sum()), float(self.n.sum())

    def sample(self, step: int) -> "_BgNbdData":
        """Every ``step``-th distinct row standing for ``step`` times its customers (a start for the full fit)."""
        part = object.__new__(_BgNbdData)
        part.zero_T, part.zero_n = self.zero_T, self.zero_n
        keep = slice(0, None, step)
        part.x, part.n = self.x[keep], self.n[keep] * step
        part.ux, part.ix = _unique(part.x)
        part.nx = np.bincount(part.ix, weights=part.n, minlength=len(part.ux))
        part.uT, part.iT = self.uT, np.ascontiguousarray(self.iT[keep])
        part.ut, part.it = self.ut, np.ascontiguousarray(self.it[keep])
        part.n_zero, part.n_repeat = self.n_zero, float(part.n.sum())
        part.total = part.n_zero + part.n_repeat
        return part

    def log_likelihood(self, r, alpha, a, b, *, gradient: bool = False):
        """Σ LL over customers (FHL 2005, eq. 6 in logs) and, with ``gradient``, its derivatives in (r, α, a, b)."""
        log_alpha = np.log(alpha)
        # Customers without repeat purchases: LL = r log α − r log(α + T).
        log_zero_T = np.log(alpha + self.zero_T)
        value = self.n_zero * r * log_alpha - r * (self.zero_n @ log_zero_T)
        # The others: A1 + A2 (per x) + log(e^A3 + e^A4) (per row), A3 = −(r+x) log(α+T),
        # A4 = log a − log(b+x−1) − (r+x) log(α+t_x).
        ux = self.ux
        a12 = (special.gammaln(r + ux) - special.gammaln(r) + special.gammaln(a + b) + special.gammaln(b + ux)
               - special.gammaln(b) - special.gammaln(a + b + ux))
        row_log_T = np.take(np.log(alpha + self.uT), self.iT)
        row_log_t = np.take(np.log(alpha + self.ut), self.it)
        rx = r + self.x
        a3 = -rx * row_log_T
        # log(e^A3 + e^A4) = A3 + log(1 + e^d) with d = A4 − A3; the share of the second branch is e^d / (1 + e^d).
        d = np.log(a) - np.take(np.log(b + ux - 1), self.ix) + rx * (row_log_T - row_log_t)
        e = np.exp(np.minimum(d, 40.0))
        value += self.nx @ a12 + self.n_repeat * r * log_alpha + self.n @ a3 + self.n @ np.where(d > 40.0, d, np.log1p(e))
        if not gradient:
            return value, None
        w4 = e / (1.0 + e) * self.n  # customers × the weight of the "dropped out after t_x" branch
        w3 = self.n - w4
        psi_ab, psi_b = special.digamma(a + b), special.digamma(b)
        d_r = (self.nx @ (special.digamma(r + ux) - special.digamma(r)) + (self.n_zero + self.n_repeat) * log_alpha
               - self.zero_n @ log_zero_T - w3 @ row_log_T - w4 @ row_log_t)
        # Σ w·rx/(α+T) over rows, summed per distinct T first (a bincount is cheaper than gathering 1/(α+T)).
        d_alpha = ((self.n_zero + self.n_repeat) * r / alpha - r * (self.zero_n @ (1 / (alpha + self.zero_T)))
                   - np.bincount(self.iT, weights=w3 * rx, minlength=len(self.uT)) @ (1 / (alpha + self.uT))
                   - np.bincount(self.it, weights=w4 * rx, minlength=len(self.ut)) @ (1 / (alpha + self.ut)))
        d_a = self.nx @ (psi_ab - special.digamma(a + b + ux)) + w4.sum() / a
        d_b = (self.nx @ (psi_ab + special.digamma(b + ux) - psi_b - special.digamma(a + b + ux))
               - np.bincount(self.ix, weights=w4, minlength=len(ux)) @ (1 / (b + ux - 1)))
        return value, np.array([d_r, d_alpha, d_a, d_b])


def bgnbd_log_likelihood(model: BgNbd, frequency, recency, T) -> float:
    x, t_x, age = check_summary(frequency, recency, T)
    value, _ = _BgNbdData(x, t_x, age, None).log_likelihood(model.r, model.alpha, model.a, model.b)
    return float(value)


def probability_alive(model: BgNbd, frequency, recency, T) -> np.ndarray:
    """P(the customer is still active | x, t_x, T) (FHL 2005, eq. 11; 1 for a customer who never bought again)."""
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    repeat = x > 0
    log_odds = np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
    return np.where(repeat, special.expit(-log_odds), 1.0)


def expected_purchases(model: BgNbd, t, frequency, recency, T) -> np.ndarray:
    """E[X(t) | x, t_x, T]: expected purchases in the next ``t`` time units (FHL 2005, eq. 10)."""
    return expected_purchases_at(model, [t], frequency, recency, T)[0]


def expected_purchases_at(model: BgNbd, horizons, frequency, recency, T) -> np.ndarray:
    """E[X(t) | x, t_x, T] for several horizons at once: an array (len(horizons), customers).

    Written as (a+b+x−1)/(a−1) · [1 − H] · P(alive) where H = ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z) with
    z = t/(α+T+t). Euler's transformation turns H into (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z), whose series
    parameters do not grow with x (no overflow for daily buyers), and it depends on (x, T) only: it is evaluated
    once per distinct pair."""
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    out = np.zeros((len(horizons), x.size))
    if x.size == 0:
        return out
    pairs, inverse = _distinct_rows(np.column_stack([x, age]), None, inverse=True)
    a, b = model.a, model.b
    factor = (a + b + x - 1) / (a - 1) * probability_alive(model, x, t_x, age)
    for row, t in enumerate(horizons):  # a handful of horizons, each vectorised over every customer
        hyper = _hyper_term(model, float(t), pairs[:, 0], pairs[:, 1])[inverse]
        out[row] = factor * (1.0 - hyper)
    return out


def _hyper_term(model: BgNbd, t: float, x: np.ndarray, age: np.ndarray) -> np.ndarray:
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = t / (alpha + age + t)
    return np.exp((a - 1) * np.log1p(-z)) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)


# --- Gamma-Gamma ----------------------------------------------------------------------------------------------------

def fit_gamma_gamma(frequency, monetary) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters, on the customers with x > 0 (the others carry no repeat spend)."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    if x.shape != m.shape or x.ndim != 1:
        raise ModelError("frequency and monetary_value must be columns of the same length")
    keep = x > 0
    _raise_if(keep & ~(np.isfinite(m) & (m > 0)),
              "a customer with repeat purchases needs a positive monetary_value (their mean repeat spend)")
    x, m = x[keep], m[keep]
    if x.size < 2:
        raise ModelError("the Gamma-Gamma model needs at least two customers with repeat purchases")
    if np.all(m == m[0]):
        raise ModelError("every repeat buyer spends the same: there is no spread for the Gamma-Gamma model")
    # The model is scale-free: fit on m / its mean (γ scales back, and each customer's density gains −log c).
    c = float(m.mean())
    z = m / c
    y = x * z  # x m̄: the only per-customer quantity the parameters meet
    # The terms linear in the parameters are sums fixed by the data: (px − 1) log z + px log x summed is
    # p Σ x (log z + log x) − Σ log z.
    n = x.size

    def objective(x, y, log_z):
        ux, ix = _unique(x)
        nx = np.bincount(ix, minlength=len(ux)).astype(float)  # customers per distinct x
        n = len(x)
        sum_x_logs, sum_log_z = float(x @ (log_z + np.log(x))), float(log_z.sum())

        def negative_ll(log_params):
            p, q, gamma = np.exp(log_params)
            px = p * ux
            log_gy = np.log(gamma + y)
            per_x = special.gammaln(px + q) - special.gammaln(px)
            ll = (nx @ per_x - n * special.gammaln(q) + n * q * np.log(gamma) + p * sum_x_logs - sum_log_z
                  - (p * x + q) @ log_gy)
            psi_pxq = special.digamma(px + q)
            d_p = (nx * ux) @ (psi_pxq - special.digamma(px)) + sum_x_logs - x @ log_gy
            d_q = nx @ psi_pxq - n * special.digamma(q) + n * np.log(gamma) - log_gy.sum()
            d_gamma = n * q / gamma - (p * x + q) @ (1.0 / (gamma + y))
            return -ll / n, -np.array([d_p * p, d_q * q, d_gamma * gamma]) / n

        return negative_ll

    log_z = np.log(z)
    step = n // _WARM_START_ROWS
    warm_up = objective(x[::step], y[::step], log_z[::step]) if step >= 4 else None
    best = _minimize(objective(x, y, log_z), np.log([1.0, 2.0, 1.0]), warm_up=warm_up)
    p, q, gamma = np.exp(best.x)
    ll = -best.fun * n - n * np.log(c)
    return GammaGamma(p=float(p), q=float(q), gamma=float(gamma * c), ll=float(ll), customers=int(n))


def expected_average_spend(model: GammaGamma, frequency, monetary) -> np.ndarray:
    """E[M | x, m̄] = p(γ + x m̄)/(px + q − 1): the customer's mean shrunk towards the population mean pγ/(q−1).

    With x = 0 it is the population mean, which is infinite when q ≤ 1 (NaN is returned then): callers that know
    a customer's single purchase can pass x = 1 and that value instead (see ``services``)."""
    x = np.asarray(frequency, dtype=float)
    m = np.where(x > 0, np.nan_to_num(np.asarray(monetary, dtype=float)), 0.0)
    denominator = model.p * x + model.q - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, model.p * (model.gamma + x * m) / denominator, np.nan)


# --- lifetime value -------------------------------------------------------------------------------------------------

def lifetime_value(bgnbd: BgNbd, frequency, recency, T, spend, *, months: int = 12, discount_rate_monthly: float = 0.01,
                   time_units_per_month: float = DAYS_PER_MONTH) -> np.ndarray:
    """Σ over the next ``months`` months of (expected purchases that month) × ``spend`` / (1 + d)^month.

    ``spend`` is the expected value of a purchase (e.g. ``expected_average_spend``); months are 365.25/12 days."""
    cumulative = expected_purchases_at(bgnbd, [month * time_units_per_month for month in range(months + 1)],
                                       frequency, recency, T)
    per_month = np.diff(cumulative, axis=0)
    discount = (1 + discount_rate_monthly) ** -np.arange(1, months + 1)
    return (discount @ per_month) * np.asarray(spend, dtype=float)


# --- shared ---------------------------------------------------------------------------------------------------------

def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True), in linear time for whole numbers in a small range (days, counts)."""
    if len(values) and values.min() >= 0 and values.max() < 2**22 and np.all(values == np.floor(values)):
        whole = values.astype(np.int64)
        present = np.bincount(whole) > 0
        distinct = np.flatnonzero(present)
        position = np.cumsum(present) - 1
        return distinct.astype(values.dtype), position[whole]
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse.ravel()


def _distinct_rows(rows: np.ndarray, weights, *, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows and how many customers each stands for (weights summed), or with ``inverse`` the index of
    each input row's distinct row. Whole numbers below 2^21 (days, counts) are packed into one int64 key, whose
    sort is several times faster than a lexsort of the columns (and np.unique(axis=0) slower still)."""
    if len(rows) and rows.shape[1] <= 3 and np.all(rows >= 0) and np.all(rows < 2**21) and np.all(rows == np.floor(rows)):
        key = np.zeros(len(rows), dtype=np.int64)
        for column in rows.T:
            key = (key << 21) | column.astype(np.int64)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.ones(len(rows), dtype=bool)
        starts[1:] = sorted_key[1:] != sorted_key[:-1]
    else:
        order = np.lexsort(rows.T[::-1])
        sorted_rows = rows[order]
        starts = np.ones(len(rows), dtype=bool)
        starts[1:] = np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1)
    group = np.cumsum(starts) - 1
    distinct = rows[order[starts]]
    if inverse:
        back = np.empty(len(rows), dtype=np.int64)
        back[order] = group
        return distinct, back
    weights = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)
    return distinct, np.bincount(group, weights=weights[order])


def _minimize(function, start, *, warm_up=None):
    """Minimise a mean negative log-likelihood over log-parameters (function returns value and gradient).

    With ``warm_up`` (the same objective on a sample), BFGS first runs on the sample and hands its end point and its
    inverse-Hessian estimate to the run on all the data, which then needs a few steps instead of twenty: the
    expensive full evaluations are what a million customers cost."""
    inverse_hessian = None
    if warm_up is not None:
        rough = optimize.minimize(warm_up, start, jac=True, method="BFGS", options={"gtol": 1e-6, "maxiter": 500})
        if np.all(np.isfinite(rough.x)) and np.isfinite(rough.fun):
            start = rough.x
            symmetric = (rough.hess_inv + rough.hess_inv.T) / 2
            if np.all(np.isfinite(symmetric)) and np.linalg.eigvalsh(symmetric).min() > 0:
                inverse_hessian = symmetric
    # The objective is a mean per customer: a gradient below 1e-8 leaves the parameters within about 1e-7 of
    # their value at the maximum, far inside the agreement asked of them (0.1 %).
    options = {"gtol": 1e-8, "maxiter": 1000, **({"hess_inv0": inverse_hessian} if inverse_hessian is not None else {})}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = optimize.minimize(function, start, jac=True, method="BFGS", options=options)
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise ModelError("the fit did not converge (the likelihood is not finite); check the data")
    if np.any(np.abs(result.x) >= 25):
        raise ModelError("the fit ran off to a boundary (a parameter above e^25 or below e^-25): the data do not "
                         "identify the model")
    return result
