"""How good is a predicted uncertainty? Ranking, calibration and likelihood metrics for errors and their σ.

An uncertainty ``σ`` is useful in two ways, and the metrics here test both:

* **Ranking** — large σ should mark large errors: the Spearman rank correlation of ``|e|`` with σ, and the
  ROC-AUC with which σ flags the largest errors (or separates out-of-distribution structures).
* **Calibration** — σ should be the error's standard deviation: the miscalibration area of the observed
  against the expected fraction of errors inside central Gaussian intervals; the RMSE against the root mean
  variance (RMV) in equal-count bins of σ, with the expected normalised calibration error (ENCE); and the
  Gaussian negative log-likelihood, which scores both at once.

References:
    Tan, Urata, Goldman, Dietschreit, Gómez-Bombarelli, npj Comput. Mater. 9, 225 (2023),
    doi:10.1038/s41524-023-01180-8 (single-model vs ensemble UQ for MLIPs; Spearman, AUC, miscalibration area, NLL).
    Rasmussen, Zhao, Busk, Bhowmik, Jaworski, Thygesen, Jensen, Proppe, J. Cheminform. 15, 121 (2023),
    doi:10.1186/s13321-023-00790-0 (error-based calibration: RMSE vs RMV, ENCE, linear fit).
    Levi, Gispan, Giladi, Fetaya, Sensors 22, 5540 (2022), doi:10.3390/s22155540 (RMV/RMSE bins, ENCE).
    Tran, Neiswanger, Yoon, Zhang, Póczos, Schneider, Xing, Mach. Learn.: Sci. Technol. 1, 025006 (2020),
    doi:10.1088/2632-2153/ab7e1a (miscalibration area).
    Mann, Whitney, Ann. Math. Statist. 18, 50 (1947) (rank-sum statistic = ROC-AUC with ties counted ½).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf
from scipy.stats import rankdata, spearmanr

from ..potential.calibration import fit_scale, gaussian_nll

__all__ = ["UQMetrics", "ood_roc_auc", "roc_auc", "uq_metrics"]

#: Points of the expected-confidence grid on [0, 1] for the calibration curve.
N_CONFIDENCE_POINTS = 1001


@dataclass
class UQMetrics:
    """Ranking, calibration and likelihood metrics of uncertainties against errors.

    Attributes:
        n: Number of (error, σ) pairs.
        unit: Unit of errors and σ, e.g. "eV".
        spearman: Spearman rank correlation of |error| with σ (1: perfect ranking).
        spearman_ci: (low, high) percentile-bootstrap interval over items, or None.
        auc: ROC-AUC of σ as a score for flagging the largest errors (0.5: no better than chance; 1: perfect).
        auc_ci: (low, high) percentile-bootstrap interval, or None.
        flag_fraction: Fraction of items with the largest |error| counted as positives for ``auc``.
        n_flagged: Number of positives (ties at the threshold are all flagged).
        miscalibration_area: Area between the observed and the expected confidence curve (0: calibrated;
            at most 0.5).
        signed_area: ∫ (observed − expected) dp: positive when σ is too large (under-confident), negative when
            too small (over-confident).
        expected: (N_CONFIDENCE_POINTS,) expected confidence levels p on [0, 1].
        observed: (N_CONFIDENCE_POINTS,) fraction of items with |e| inside the central interval of N(0, σ²)
            holding probability p.
        nll: Mean Gaussian negative log-likelihood of the errors under σ as given (nats; depends on ``unit``).
        scale: The single factor s that would maximise the likelihood of these very errors
            (:func:`mlipviz.potential.calibration.fit_scale`); 1 for calibrated σ.
        nll_calibrated: NLL under s·σ: the best any single rescaling could reach on these data (optimistic,
            since s is fitted on the same errors).
        bin_rmv: (n_bins,) root mean variance sqrt(mean σ²) per equal-count bin of σ (ascending), in ``unit``.
        bin_rmse: (n_bins,) root-mean-square error per bin, in ``unit``.
        bin_count: (n_bins,) items per bin.
        ence: Expected normalised calibration error, mean over bins of |RMV − RMSE| / RMV (0: calibrated).
        slope: Slope of the least-squares line RMSE = slope·RMV + intercept through the bins (1 ideal).
        intercept: Its intercept, in ``unit`` (0 ideal).
        cv: Coefficient of variation of σ (sample standard deviation / mean): how much σ discriminates at all.
        confidence: Confidence level of the bootstrap intervals.
    """

    n: int
    unit: str
    spearman: float
    spearman_ci: tuple[float, float] | None
    auc: float
    auc_ci: tuple[float, float] | None
    flag_fraction: float
    n_flagged: int
    miscalibration_area: float
    signed_area: float
    expected: np.ndarray
    observed: np.ndarray
    nll: float
    scale: float
    nll_calibrated: float
    bin_rmv: np.ndarray
    bin_rmse: np.ndarray
    bin_count: np.ndarray
    ence: float
    slope: float
    intercept: float
    cv: float
    confidence: float = 0.95

    def __str__(self) -> str:
        def ci(v):
            return "" if v is None else f" [{v[0]:.2f}, {v[1]:.2f}]"

        return (f"n={self.n}: Spearman ρ={self.spearman:.3f}{ci(self.spearman_ci)}, "
                f"AUC(top {self.flag_fraction:.0%})={self.auc:.3f}{ci(self.auc_ci)}, "
                f"miscalibration area={self.miscalibration_area:.3f}, NLL={self.nll:.3f} "
                f"(×{self.scale:.3g} → {self.nll_calibrated:.3f}), ENCE={self.ence:.3f}, "
                f"RMSE≈{self.slope:.2f}·RMV{self.intercept:+.2g} {self.unit}")


def check_pairs(errors, sigmas) -> tuple[np.ndarray, np.ndarray]:
    """``errors`` and ``sigmas`` as flat float arrays, refused by name unless paired, non-empty, finite, σ > 0."""
    e = np.asarray(errors, dtype=float)
    s = np.asarray(sigmas, dtype=float)
    if e.shape != s.shape:
        raise ValueError(f"errors has shape {e.shape} but sigmas has shape {s.shape}; they must pair up.")
    e, s = e.reshape(-1), s.reshape(-1)
    if e.size == 0:
        raise ValueError("errors and sigmas are empty.")
    if not np.all(np.isfinite(e)):
        raise ValueError(f"errors holds {int(np.sum(~np.isfinite(e)))} NaN or infinite value(s).")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"sigmas holds {int(np.sum(~np.isfinite(s)))} NaN or infinite value(s).")
    if np.any(s <= 0):
        raise ValueError(f"sigmas holds {int(np.sum(s <= 0))} value(s) ≤ 0; an uncertainty must be positive.")
    return e, s


def _positive_scores(values, name: str, allow_zero: bool = False) -> np.ndarray:
    v = np.asarray(values, dtype=float).reshape(-1)
    if v.size == 0:
        raise ValueError(f"{name} is empty.")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(v)))} NaN or infinite value(s).")
    bad = v < 0 if allow_zero else v <= 0
    if np.any(bad):
        raise ValueError(f"{name} holds {int(np.sum(bad))} value(s) {'< 0' if allow_zero else '≤ 0'}; an uncertainty "
                         f"must be {'non-negative' if allow_zero else 'positive'}.")
    return v


def _auc_rows(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC of each row of ``scores`` (k, n) with boolean labels ``positive`` (k, n); ties count ½."""
    ranks = rankdata(scores, axis=-1)  # average ranks: a tie between a positive and a negative counts ½
    n_pos = positive.sum(axis=-1)
    n_neg = positive.shape[-1] - n_pos
    r_pos = np.where(positive, ranks, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``labels``, by the Mann–Whitney rank-sum formula.

    Equals the probability that a random positive scores higher than a random negative, ties counted ½.

    Args:
        scores: (n,) finite scores (higher means "more likely positive").
        labels: (n,) booleans; at least one positive and one negative.

    Returns:
        The AUC in [0, 1].

    Raises:
        ValueError: for mismatched lengths, non-finite scores, or labels of one class only.
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size} values) and labels ({y.size} values) must pair up.")
    if y.dtype != bool:
        raise TypeError(f"labels must be booleans, got dtype {y.dtype}.")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores holds NaN or infinite values.")
    if y.all() or not y.any():
        raise ValueError("labels must hold at least one positive and one negative item.")
    return float(_auc_rows(s, y))


def ood_roc_auc(sigma_in, sigma_out) -> float:
    """ROC-AUC with which σ separates out-of-distribution items (positives) from in-distribution ones.

    Args:
        sigma_in: Uncertainties of in-distribution items (e.g. a test split), any shape, ≥ 0.
        sigma_out: Uncertainties of out-of-distribution items (e.g. stretched or unseen geometries), ≥ 0. A zero
            is a valid score here: atoms beyond every cutoff get exactly the same (zero) force from every member.

    Returns:
        The AUC: 1 when every OOD item has a larger σ than every in-distribution item, 0.5 for no separation.

    Raises:
        ValueError: for an empty, non-finite or negative input.
    """
    a = _positive_scores(sigma_in, "sigma_in", allow_zero=True)
    b = _positive_scores(sigma_out, "sigma_out", allow_zero=True)
    labels = np.concatenate([np.zeros(a.size, bool), np.ones(b.size, bool)])
    return float(_auc_rows(np.concatenate([a, b]), labels))


def _flag_largest(abs_errors: np.ndarray, flag_fraction: float) -> np.ndarray:
    """Boolean mask(s) of the top ``flag_fraction`` of |errors| along the last axis (ties at the threshold included)."""
    n = abs_errors.shape[-1]
    k = max(1, int(round(flag_fraction * n)))
    threshold = np.partition(abs_errors, n - k, axis=-1)[..., n - k : n - k + 1]
    return abs_errors >= threshold


def _calibration_curve(e: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected confidence p on a grid and the observed fraction of |e| ≤ z_p σ, z_p = Φ⁻¹((1+p)/2)."""
    # |e| ≤ z_p σ  ⇔  erf(|e| / (σ√2)) ≤ p: the confidence level at which an item enters its interval.
    q = np.sort(erf(np.abs(e) / (s * np.sqrt(2))))
    p = np.linspace(0.0, 1.0, N_CONFIDENCE_POINTS)
    observed = np.searchsorted(q, p, side="right") / q.size
    return p, observed


def _bins(e: np.ndarray, s: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(s, kind="stable")
    groups = np.array_split(order, n_bins)
    rmv = np.array([np.sqrt(np.mean(s[g] ** 2)) for g in groups])
    rmse = np.array([np.sqrt(np.mean(e[g] ** 2)) for g in groups])
    return rmv, rmse, np.array([g.size for g in groups])


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair: the Pearson correlation of average ranks (as scipy computes it)."""
    rx = rankdata(x, axis=-1)
    ry = rankdata(y, axis=-1)
    rx -= rx.mean(axis=-1, keepdims=True)
    ry -= ry.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(-1) / np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))


def _bootstrap(e, s, flag_fraction, n_boot, confidence, seed):
    rng = np.random.default_rng(seed)
    n = e.size
    rho, auc = np.empty(n_boot), np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)  # bound the memory of the rank arrays
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        ae, ss = np.abs(e[idx]), s[idx]
        rho[start : start + len(idx)] = _spearman_rows(ae, ss)
        auc[start : start + len(idx)] = _auc_rows(ss, _flag_largest(ae, flag_fraction))
    a = (1 - confidence) / 2

    def interval(x):
        x = x[np.isfinite(x)]  # a resample with one class only, or constant values, has no ρ or AUC
        return (float(np.quantile(x, a)), float(np.quantile(x, 1 - a))) if x.size else None

    return interval(rho), interval(auc)


def uq_metrics(errors, sigmas, flag_fraction: float = 0.1, n_bins: int = 10, unit: str = "eV", n_boot: int = 200,
               confidence: float = 0.95, seed: int = 0) -> UQMetrics:
    """Ranking, calibration and likelihood metrics of uncertainties ``sigmas`` for ``errors``.

    Args:
        errors: Prediction − reference, any shape (e.g. (n_structures,) energies in eV); flattened.
        sigmas: Predicted standard deviations, same shape and unit, all positive.
        flag_fraction: Fraction of items with the largest |error| that the AUC should flag, in (0, 1).
        n_bins: Equal-count bins of σ for RMSE vs RMV; each bin needs at least 2 items.
        unit: Unit of errors and σ, for display.
        n_boot: Bootstrap resamples (of items) for the intervals of ρ and AUC; 0 skips them.
        confidence: Confidence level of those intervals, in (0, 1).
        seed: Seed of the resampling.

    Returns:
        A :class:`UQMetrics`.

    Raises:
        ValueError: for mismatched shapes, empty or non-finite input, σ ≤ 0, ``flag_fraction`` outside (0, 1)
            or one that flags every item, ``n_bins`` < 1 or more than half the items, or a bad bootstrap setting.
    """
    e, s = check_pairs(errors, sigmas)
    n = e.size
    if n < 2:
        raise ValueError(f"Need at least 2 (error, σ) pairs for rank metrics, got {n}.")
    if not 0 < flag_fraction < 1:
        raise ValueError(f"flag_fraction must lie in (0, 1), got {flag_fraction!r}.")
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    if 2 * n_bins > n:
        raise ValueError(f"n_bins={n_bins} is too large for {n} items: each bin needs at least 2 (use ≤ {n // 2}).")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}.")
    ae = np.abs(e)
    flagged = _flag_largest(ae, flag_fraction)
    if flagged.all():
        raise ValueError(f"flag_fraction={flag_fraction} flags every item (all |errors| tie at the threshold); "
                         f"there is no negative class for the AUC.")
    rho = float(spearmanr(ae, s).statistic)
    auc = float(_auc_rows(s, flagged))
    p, observed = _calibration_curve(e, s)
    area = float(np.trapezoid(np.abs(observed - p), p))
    signed = float(np.trapezoid(observed - p, p))
    scale = fit_scale(e, s)
    rmv, rmse, count = _bins(e, s, n_bins)
    if n_bins >= 2 and np.ptp(rmv) > 0:
        slope, intercept = (float(v) for v in np.polyfit(rmv, rmse, 1))
    else:  # one bin, or σ constant: no line to fit, only the ratio
        slope, intercept = float(rmse.mean() / rmv.mean()), 0.0
    rho_ci = auc_ci = None
    if n_boot:
        rho_ci, auc_ci = _bootstrap(e, s, flag_fraction, int(n_boot), confidence, seed)
    return UQMetrics(
        n=n, unit=unit, spearman=rho, spearman_ci=rho_ci, auc=auc, auc_ci=auc_ci, flag_fraction=float(flag_fraction),
        n_flagged=int(flagged.sum()), miscalibration_area=area, signed_area=signed, expected=p, observed=observed,
        nll=gaussian_nll(e, s), scale=scale, nll_calibrated=gaussian_nll(e, scale * s) if scale > 0 else float("nan"),
        bin_rmv=rmv, bin_rmse=rmse, bin_count=count, ence=float(np.mean(np.abs(rmv - rmse) / rmv)), slope=slope,
        intercept=intercept, cv=float(np.std(s, ddof=1) / np.mean(s)), confidence=float(confidence),
    )
