"""Throughput models X(N) as scikit-learn-style estimators: `fit(N, X)` returns self,
fitted values end in `_`, `predict(N)`.

Universal Scalability Law (Gunther): X(N) = λN / (1 + σ(N−1) + κN(N−1)), σ, κ ≥ 0.
Amdahl is the USL with κ = 0; linear is X = λN. Fits are nonlinear least squares on
throughput (scipy.optimize.least_squares with bounds), as R's `usl` package does, with
R², residuals, standard errors and 95 % confidence intervals from the Jacobian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import optimize, stats
from loadwise.errors import LoadwiseError


class CapacityError(LoadwiseError, ValueError):
    """Data a model cannot honestly be fitted to; the message says why."""


def check_points(n: Any, x: Any, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    n_arr, x_arr = np.asarray(n, dtype=float), np.asarray(x, dtype=float)
    if n_arr.shape != x_arr.shape or n_arr.ndim != 1:
        raise CapacityError("concurrency and throughput must be two lists of the same length")
    if not (np.isfinite(n_arr).all() and np.isfinite(x_arr).all()):
        raise CapacityError("the data contain NaN or infinite values")
    if (n_arr <= 0).any() or (x_arr < 0).any():
        raise CapacityError("concurrency must be positive and throughput not negative")
    if len(np.unique(n_arr)) < minimum:
        raise CapacityError(f"need at least {minimum} distinct concurrency levels to fit this model (got {len(np.unique(n_arr))})")
    if (x_arr == 0).all():
        raise CapacityError("throughput is zero everywhere: no request succeeded?")
    if np.ptp(x_arr) == 0:
        raise CapacityError("throughput is the same at every concurrency: nothing to fit (was the load generator saturated?)")
    return n_arr, x_arr


@dataclass
class _Fit:
    params: np.ndarray
    stderr: np.ndarray
    residuals: np.ndarray
    r_squared: float


class ThroughputModel:
    """Base: subclasses give `names`, `bounds`, `_curve` and a starting point."""

    name: ClassVar[str] = ""
    names: ClassVar[tuple[str, ...]] = ()

    def _curve(self, n: np.ndarray, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _bounds(self) -> tuple[list[float], list[float]]:
        raise NotImplementedError

    def _start(self, n: np.ndarray, x: np.ndarray) -> list[float]:
        raise NotImplementedError

    @property
    def n_params(self) -> int:
        return len(self.names)

    def fit(self, n: Any, x: Any, weights: Any = None) -> ThroughputModel:
        n_arr, x_arr = check_points(n, x, self.n_params + 1)
        w = np.ones_like(x_arr) if weights is None else np.sqrt(np.asarray(weights, dtype=float))
        low, high = self._bounds()
        start = np.clip(self._start(n_arr, x_arr), low, high)
        result = optimize.least_squares(
            lambda p: w * (self._curve(n_arr, p) - x_arr), start, bounds=(low, high), x_scale="jac",
            xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=20_000,
        )  # fmt: skip
        residuals = x_arr - self._curve(n_arr, result.x)
        dof = len(x_arr) - self.n_params
        ss_res = float(np.sum((w * residuals) ** 2))
        ss_tot = float(np.sum(w**2 * (x_arr - np.average(x_arr, weights=w**2)) ** 2))
        try:
            cov = np.linalg.pinv(result.jac.T @ result.jac) * (ss_res / dof)
            stderr = np.sqrt(np.clip(np.diag(cov), 0, None))
        except np.linalg.LinAlgError:
            stderr = np.full(self.n_params, np.nan)
        self._fit = _Fit(result.x, stderr, residuals, 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"))
        self.n_ = n_arr
        self.x_ = x_arr
        self.params_ = dict(zip(self.names, (float(v) for v in result.x)))
        self.stderr_ = dict(zip(self.names, (float(v) for v in stderr)))
        t = stats.t.ppf(0.975, dof)
        self.conf_int_ = {
            k: (float(self.params_[k] - t * self.stderr_[k]), float(self.params_[k] + t * self.stderr_[k])) for k in self.names
        }
        self.residuals_ = residuals
        self.r_squared_ = self._fit.r_squared
        self.ss_res_ = ss_res
        for key, value in self.params_.items():
            setattr(self, f"{key}_", value)
        return self

    def predict(self, n: Any) -> np.ndarray:
        return self._curve(np.asarray(n, dtype=float), self._fit.params)

    def band(self, n: Any, draws: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """95 % band of the curve, from parameter draws within their standard errors."""
        rng = np.random.default_rng(seed)
        low, high = self._bounds()
        samples = rng.normal(self._fit.params, np.nan_to_num(self._fit.stderr), size=(draws, self.n_params))
        samples = np.clip(samples, low, high)
        n_arr = np.asarray(n, dtype=float)
        curves = np.array([self._curve(n_arr, p) for p in samples])
        return np.percentile(curves, 2.5, axis=0), np.percentile(curves, 97.5, axis=0)

    @property
    def aicc_(self) -> float:
        """Corrected Akaike information criterion of the least-squares fit."""
        n, k = len(self.x_), self.n_params + 1
        rss = max(self.ss_res_, 1e-300)
        aic = n * math.log(rss / n) + 2 * k
        return aic + (2 * k * (k + 1)) / (n - k - 1) if n - k - 1 > 0 else float("inf")

    @property
    def peak_concurrency_(self) -> float | None:
        return None

    @property
    def peak_throughput_(self) -> float | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "sigma": self.params_.get("sigma"),
            "kappa": self.params_.get("kappa"),
            "lambda": self.params_.get("lambda"),
            "conf_int": {k: list(v) for k, v in self.conf_int_.items()},
            "peak_concurrency": _finite(self.peak_concurrency_),
            "peak_throughput": _finite(self.peak_throughput_),
            "r_squared": _finite(self.r_squared_),
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class USL(ThroughputModel):
    name = "usl"
    names = ("lambda", "sigma", "kappa")

    def _curve(self, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        lam, sigma, kappa = p
        return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))

    def _bounds(self) -> tuple[list[float], list[float]]:
        return [1e-12, 0.0, 0.0], [np.inf, 1.0, np.inf]

    def _start(self, n: np.ndarray, x: np.ndarray) -> list[float]:
        order = np.argsort(n)
        return [float(x[order][0] / n[order][0]), 0.05, 1e-4]

    @property
    def peak_concurrency_(self) -> float | None:
        sigma, kappa = self.params_["sigma"], self.params_["kappa"]
        return math.sqrt((1 - sigma) / kappa) if kappa > 0 else math.inf

    @property
    def peak_throughput_(self) -> float | None:
        peak = self.peak_concurrency_
        if peak is None or not math.isfinite(peak):
            return math.inf
        return float(self.predict([peak])[0])


class Amdahl(USL):
    name = "amdahl"
    names = ("lambda", "sigma")

    def _curve(self, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        lam, sigma = p
        return lam * n / (1 + sigma * (n - 1))

    def _bounds(self) -> tuple[list[float], list[float]]:
        return [1e-12, 0.0], [np.inf, 1.0]

    def _start(self, n: np.ndarray, x: np.ndarray) -> list[float]:
        return super()._start(n, x)[:2]

    @property
    def peak_concurrency_(self) -> float | None:
        return math.inf  # approaches λ/σ, never peaks

    @property
    def peak_throughput_(self) -> float | None:
        sigma = self.params_["sigma"]
        return self.params_["lambda"] / sigma if sigma > 0 else math.inf


class Linear(ThroughputModel):
    name = "linear"
    names = ("lambda",)

    def _curve(self, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        return p[0] * n

    def _bounds(self) -> tuple[list[float], list[float]]:
        return [1e-12], [np.inf]

    def _start(self, n: np.ndarray, x: np.ndarray) -> list[float]:
        return [float(np.sum(n * x) / np.sum(n * n)) or 1.0]

    @property
    def peak_concurrency_(self) -> float | None:
        return math.inf

    @property
    def peak_throughput_(self) -> float | None:
        return math.inf


MODELS: dict[str, type[ThroughputModel]] = {"usl": USL, "amdahl": Amdahl, "linear": Linear}
SIGNIFICANCE = 0.01  # a richer (nested) model is chosen when its extra parameters are this significant


def select_model(n: Any, x: Any, weights: Any = None) -> tuple[ThroughputModel, dict[str, ThroughputModel]]:
    """Fit every model the data allow and keep the simplest one not clearly beaten.

    The models are nested (linear is Amdahl with sigma 0, Amdahl is USL with kappa 0), so a
    richer one is chosen when the extra-sum-of-squares F-test says its parameters cut the
    residuals significantly (p < SIGNIFICANCE). AICc was used before: with six steps its
    small-sample penalty never let USL win, even on a curve that clearly went down (USL R²
    0.97 against Amdahl's 0.58 on a real step run), so no peak was ever reported.
    """
    fitted: dict[str, ThroughputModel] = {}
    errors = []
    for name in ("linear", "amdahl", "usl"):
        try:
            fitted[name] = MODELS[name]().fit(n, x, weights)
        except CapacityError as exc:
            errors.append(str(exc))
    if not fitted:
        raise CapacityError(errors[0])
    best = fitted["linear"] if "linear" in fitted else next(iter(fitted.values()))
    for name in ("amdahl", "usl"):
        if name in fitted and _significantly_better(fitted[name], best):
            best = fitted[name]
    return best, fitted


def _significantly_better(rich: ThroughputModel, simple: ThroughputModel) -> bool:
    extra, dof = rich.n_params - simple.n_params, len(rich.x_) - rich.n_params
    if extra <= 0 or dof <= 0:
        return False
    if rich.ss_res_ <= 0:
        return simple.ss_res_ > 0
    f = ((simple.ss_res_ - rich.ss_res_) / extra) / (rich.ss_res_ / dof)
    return f > 0 and float(stats.f.sf(f, extra, dof)) < SIGNIFICANCE
