"""Attribution at the failure of an MD run: which atoms and pairs are behind a bond that comes apart, frame by frame.

A stability test (Fu et al. 2023, :func:`mlipviz.md.fu_protocol`) ends a replica at the first frame where a bond
leaves its reference length; its :class:`~mlipviz.md.StabilityReport` keeps that frame and the bond (i, j). For the
last frames before and at the failure, :func:`failure_attribution` attributes:

* **the energy**: Integrated Gradients from one common baseline (by default the model's own minimum, relaxed
  from the first frame given and aligned onto each frame), with its completeness gap; and the model's own
  per-atom energy decomposition;
* **the force along the bond**: for each offending atom a with partner b, f_a = F_a · (r_a − r_b)/|r_a − r_b|
  (eV/Å, positive when the force pushes a away from b), attributed to every atom by Integrated Gradients (the
  attributions add up to f_a(frame) − f_a(baseline)) or saliency (:mod:`.force`);
* **pair relevances** (GNN-LRP, :func:`mlipviz.attribution.pair_relevance`) of the pairs that involve an
  offending atom, and their change from the baseline.

Ranking. Atoms are ranked by |energy attribution| at the failure frame (IG: the share of E(failure) − E(baseline)
each atom carries; saliency: |F_k|), pairs by how much their relevance changed from the baseline. The force
attributions are not used for the ranking: their split between atoms that move together depends on how the
baseline is aligned (see :mod:`.force`), while the energy's gradient is small on the atoms that stay near
equilibrium, so that a stretched bond's atoms carry its energy.

References:
    Fu et al., TMLR 2023, arXiv:2210.07237 (stability of MLFF simulations, the bond rule).
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (Integrated Gradients, completeness).
    Schnake et al., IEEE TPAMI 44, 7581 (2022), arXiv:2006.03589 (GNN-LRP).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from ..geometry import check_atoms, check_positive_int
from ..potential.calculator import MLIPCalculator
from ..potential.chemistry import check_chemistry, embedding_size
from .baselines import BASELINE_KINDS
from .decomposition import binding_contributions
from .force import FORCE_METHODS, check_atom_index, force_attributions
from .integrated_gradients import DEFAULT_TOL, MAX_STEPS, _resolve_baseline, check_tolerance, integrated_gradients
from .nbody import pair_relevance
from .saliency import saliency

__all__ = ["FailureAttribution", "failure_attribution"]


@dataclass
class FailureAttribution:
    """Attributions over the last frames before and at an MD failure (see :func:`failure_attribution`).

    Arrays run over the ``n_window`` attributed frames (the failure frame last); "offending" axes hold the two
    atoms (i, j) of the failed bond, in that order.

    Attributes:
        frames: The attributed frames, Å.
        frame_indices: (n_window,) their indices in the frames given.
        offending: (i, j), the atoms of the failed bond.
        symbols: Element of every atom.
        method: "ig" or "saliency".
        distance_A: (n_frames,) |r_i − r_j| in every frame given, Å (NaN where not finite).
        energy: (n_window,) model energy, eV.
        baseline: The common baseline (as given or relaxed, not aligned), Å.
        baseline_energy: Its model energy, eV.
        energy_attributions: (n_window, n_atoms) IG of the energy (eV, sum = E − E(baseline) up to the gap), or
            saliency |F_k| (eV/Å).
        energy_gap: (n_window,) completeness gap of the energy, eV (NaN for saliency).
        energy_decomposition: (n_window, n_atoms) the model's per-atom energy minus its isolated-atom energy, eV.
        projected_force: (n_window, 2) f_i and f_j, the force on each offending atom along the bond, pointing away
            from its partner, eV/Å (positive: the forces stretch the bond).
        baseline_projected_force: (n_window, 2) the same on the baseline aligned onto each frame, eV/Å (NaN for
            saliency).
        force_attributions: (n_window, 2, n_atoms) IG of f_i and f_j (eV/Å, sums = f − f(baseline) up to the
            gap) or saliency |∂f/∂r_k| (eV/Å²).
        force_gap: (n_window, 2) completeness gaps, eV/Å (NaN for saliency).
        pairs: (n_pairs, 2) pairs involving an offending atom, the failed bond first.
        pair_values: (n_window, n_pairs) their GNN-LRP pair relevance, eV (empty without ``pairs``).
        baseline_pair_values: (n_pairs,) the same on the baseline, eV.
        pair_conservation_error: (n_window,) Σ relevances + offset − E of each frame, eV.
        atom_scores: (n_atoms,) |energy attribution| at the failure frame (``energy_unit``).
        atom_ranking: (n_atoms,) atom indices, highest score first.
        pair_scores: (n_pairs,) |pair relevance − baseline| at the failure frame, eV.
        pair_ranking: (n_pairs,) indices into ``pairs``, highest score first.
        energy_unit, force_unit: Units of the energy and force attributions.
        dt_fs: Time between frames, fs, or None.
    """

    frames: list[Atoms]
    frame_indices: np.ndarray
    offending: tuple[int, int]
    symbols: list[str]
    method: str
    distance_A: np.ndarray
    energy: np.ndarray
    baseline: Atoms
    baseline_energy: float
    energy_attributions: np.ndarray
    energy_gap: np.ndarray
    energy_decomposition: np.ndarray
    projected_force: np.ndarray
    baseline_projected_force: np.ndarray
    force_attributions: np.ndarray
    force_gap: np.ndarray
    pairs: np.ndarray
    pair_values: np.ndarray
    baseline_pair_values: np.ndarray
    pair_conservation_error: np.ndarray
    atom_scores: np.ndarray
    atom_ranking: np.ndarray
    pair_scores: np.ndarray
    pair_ranking: np.ndarray
    energy_unit: str
    force_unit: str
    dt_fs: float | None = None

    def label(self, k: int) -> str:
        """Element and index of atom ``k``, e.g. "H1"."""
        return f"{self.symbols[k]}{k}"

    @property
    def bond_label(self) -> str:
        i, j = self.offending
        return f"{self.label(i)}–{self.label(j)}"

    @property
    def stretching_attributions(self) -> np.ndarray:
        """(n_window, n_atoms) attributions of the stretching force f_i + f_j (the sum of both offending atoms'),
        in ``force_unit``; for IG they add up to its change from the baseline."""
        return self.force_attributions.sum(axis=1)

    def ranked_atoms(self) -> list[tuple[str, float]]:
        """``[(label, |energy attribution| at failure), ...]``, largest first (in ``energy_unit``)."""
        return [(self.label(int(k)), float(self.atom_scores[k])) for k in self.atom_ranking]

    def ranked_pairs(self) -> list[tuple[str, float]]:
        """``[(label, change of pair relevance from the baseline at failure, eV), ...]`` largest |change| first."""
        out = []
        for p in self.pair_ranking:
            a, b = self.pairs[p]
            out.append((f"{self.label(int(a))}–{self.label(int(b))}",
                        float(self.pair_values[-1, p] - self.baseline_pair_values[p])))
        return out

    def __str__(self) -> str:
        f = self.frame_indices[-1]
        lines = [f"failure of {self.bond_label} at frame {f} ({self.distance_A[f]:.2f} Å); "
                 f"{len(self.frame_indices)} frame(s) attributed with {self.method}",
                 f"  force along the bond at failure: {self.projected_force[-1, 0]:+.3f}, "
                 f"{self.projected_force[-1, 1]:+.3f} eV/Å (positive stretches)",
                 "  atoms carrying the energy change: " + ", ".join(f"{n} {s:.3g}" for n, s in self.ranked_atoms()[:4])
                 + f" {self.energy_unit}"]
        if len(self.pair_ranking):
            lines.append("  pairs whose relevance changed most: "
                         + ", ".join(f"{n} {v:+.3g}" for n, v in self.ranked_pairs()[:4]) + " eV")
        if self.method == "ig":
            lines.append(f"  largest completeness gaps: energy {np.abs(self.energy_gap).max():.1e} eV, "
                         f"force {np.abs(self.force_gap).max():.1e} eV/Å")
        return "\n".join(lines)

    def plot(self, top: int = 3, figsize=(6.0, 7.5)):
        """The offending distance against time, and the energy and stretching-force attributions of the top atoms.

        Args:
            top: How many of the top-ranked atoms to draw.
            figsize: Figure size, inches.

        Returns:
            The matplotlib Figure (three axes: distance, energy attribution, stretching-force attribution).
        """
        import matplotlib.pyplot as plt

        top = check_positive_int(top, "top")
        scale, xlabel = (self.dt_fs, "time (fs)") if self.dt_fs else (1.0, "frame")
        t_all = np.arange(len(self.distance_A)) * scale
        t = self.frame_indices * scale
        fig, axes = plt.subplots(3, 1, figsize=figsize, sharex=True)
        axes[0].plot(t_all, self.distance_A, color="k", lw=1)
        axes[0].axvspan(t[0], t[-1], color="tab:orange", alpha=0.15, lw=0, label="attributed frames")
        axes[0].axvline(t[-1], color="tab:red", ls=":", label="failure")
        axes[0].set_ylabel(f"r({self.bond_label}) (Å)")
        axes[0].legend(fontsize=7)
        what = "IG" if self.method == "ig" else "saliency"
        for k in self.atom_ranking[:top]:
            line, = axes[1].plot(t, self.energy_attributions[:, k], "o-", ms=3, label=self.label(int(k)))
            axes[2].plot(t, self.stretching_attributions[:, k], "o-", ms=3, color=line.get_color(),
                         label=self.label(int(k)))
        if self.method == "ig":
            axes[2].plot(t, self.projected_force.sum(axis=1) - self.baseline_projected_force.sum(axis=1), "k--",
                         lw=1, label="f − f(baseline)")
        axes[1].set_ylabel(f"energy {what} ({self.energy_unit})", fontsize=8)
        axes[2].set_ylabel(f"{what} of f_i + f_j ({self.force_unit})", fontsize=8)
        axes[2].set_xlabel(xlabel)
        for ax in axes[1:]:
            ax.axhline(0, color="grey", lw=0.5)
            ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    @classmethod
    def from_stability_run(cls, run, replica: int, model: torch.nn.Module, config, **kwargs) -> FailureAttribution:
        """:func:`failure_attribution` of one failed replica of a :class:`~mlipviz.md.StabilityRun`.

        The frames are the replica's recorded frames up to its failure frame, the offending pair is its report's
        ``failed_bond`` and the frame interval its ``dt_fs``.

        Args:
            run: The result of :func:`mlipviz.md.fu_protocol`.
            replica: Index of the replica.
            model, config: The potential that ran it and its :class:`~mlipviz.potential.ModelConfig`.
            **kwargs: Passed to :func:`failure_attribution`.

        Raises:
            ValueError: for a replica out of range, one that did not fail, or a failure without a finite frame.
        """
        from ..md.protocols import StabilityRun

        if not isinstance(run, StabilityRun):
            raise ValueError(f"run must be a StabilityRun (from mlipviz.md.fu_protocol), got {type(run).__name__}.")
        n_rep = len(run.reports)
        if isinstance(replica, bool) or not isinstance(replica, (int, np.integer)) or not 0 <= replica < n_rep:
            raise ValueError(f"replica must be a replica index in 0..{len(run.reports) - 1}, got {replica!r}.")
        report = run.reports[replica]
        if report.stable:
            raise ValueError(f"replica {replica} did not fail within {run.horizon_ps:g} ps: nothing to attribute.")
        frames = run.result.frames(replica)[: report.failure_frame + 1]
        if report.failed_bond is None or not np.all(np.isfinite(frames[-1].positions)):
            raise ValueError(f"replica {replica} failed at frame {report.failure_frame} with non-finite positions: "
                             "there is no bond to attribute; attribute an earlier frame of run.result.frames(...).")
        kwargs.setdefault("dt_fs", report.dt_fs)
        return failure_attribution(frames, model, config, report.failed_bond, **kwargs)


def _check_frames(frames, model, config) -> list[Atoms]:
    if isinstance(frames, Atoms) or not hasattr(frames, "__iter__"):
        raise ValueError(f"frames must be a list of ase.Atoms (a trajectory), got {type(frames).__name__}.")
    frames = list(frames)
    if not frames:
        raise ValueError("frames is empty: give the trajectory up to and including the failure frame.")
    for k, f in enumerate(frames):
        if not isinstance(f, Atoms):
            raise ValueError(f"frames[{k}] must be an ase.Atoms, got {type(f).__name__}.")
        if len(f) != len(frames[-1]) or not np.array_equal(f.numbers, frames[-1].numbers):
            raise ValueError(f"frames[{k}] holds other atoms than the failure frame: one molecule per trajectory.")
    check_chemistry(frames[-1], getattr(config, "elements", None), embedding_size(model), "the failure frame")
    return frames


def failure_attribution(
    frames,
    model: torch.nn.Module,
    config,
    offending,
    *,
    n_before: int = 5,
    method: str = "ig",
    baseline: Atoms | str = "minimum",
    training: list[Atoms] | None = None,
    pairs: bool = True,
    tol: float = DEFAULT_TOL,
    force_tol: float = DEFAULT_TOL,
    n_steps: int | None = None,
    max_steps: int = MAX_STEPS,
    dt_fs: float | None = None,
) -> FailureAttribution:
    """Attribute the energy, the forces along the offending bond and its pair relevances over the run-up to a failure.

    Args:
        frames: The trajectory up to and including the failure frame (the last), list of ``ase.Atoms``, Å.
        model: The potential (a SchNetPack model from :func:`mlipviz.potential.build_model` or ``load_model``).
        config: Its :class:`~mlipviz.potential.ModelConfig` (elements, cutoff).
        offending: (i, j), the atoms of the failed bond (``StabilityReport.failed_bond``).
        n_before: How many of the last frames to attribute (the failure frame included).
        method: "ig" (Integrated Gradients, completeness-checked) or "saliency" (|gradient|, no baseline).
        baseline: The common reference structure: "minimum" (the model's minimum relaxed from ``frames[0]``),
            "first" (``frames[0]`` itself), "training-minimum" (needs ``training``), "dissociated", or an
            ``ase.Atoms`` with the same atoms. It is aligned onto each frame; pair relevances are compared to it.
        training: The model's training structures, for ``baseline="training-minimum"``.
        pairs: Compute GNN-LRP pair relevances (SchNet and PaiNN only).
        tol: Completeness tolerance of the energy, eV.
        force_tol: Completeness tolerance of the projected forces, eV/Å.
        n_steps, max_steps: Quadrature points (None: doubled from 16 until the tolerance is met, up to max_steps).
        dt_fs: Time between frames, fs, for the plot.

    Returns:
        A :class:`FailureAttribution`.

    Raises:
        ValueError: naming bad frames (empty, other atoms, non-finite or overlapping positions, elements the
            model does not know), a bad offending pair, ``n_before``, ``method`` or ``baseline``.
    """
    frames = _check_frames(frames, model, config)
    n = len(frames[-1])
    if isinstance(offending, (str, bytes)) or not hasattr(offending, "__len__") or len(offending) != 2:
        raise ValueError(f"offending must be a pair of atom indices (i, j), got {offending!r}.")
    i, j = (check_atom_index(a, n, "offending") for a in offending)
    if i == j:
        raise ValueError(f"offending must name two different atoms, got ({i}, {j}).")
    n_before = check_positive_int(n_before, "n_before")
    if method not in FORCE_METHODS:
        raise ValueError(f"method={method!r} is not one of {FORCE_METHODS}.")
    tol, force_tol = check_tolerance(tol), check_tolerance(force_tol, "force_tol")
    if dt_fs is not None and not (np.isfinite(dt_fs) and dt_fs > 0):
        raise ValueError(f"dt_fs must be a positive time in fs, got {dt_fs!r}.")
    indices = np.arange(max(0, len(frames) - n_before), len(frames))
    window = [frames[k].copy() for k in indices]
    for k, f in zip(indices, window):
        f.calc = None
        check_atoms(f, f"frames[{k}]")
    model = model.eval()
    if isinstance(baseline, str) and baseline == "first":
        base = check_atoms(frames[0].copy(), "frames[0]")
    elif isinstance(baseline, str) and baseline not in BASELINE_KINDS:
        raise ValueError(f"baseline={baseline!r} is not 'first', one of {BASELINE_KINDS} or an ase.Atoms.")
    else:
        start = check_atoms(frames[0].copy(), "frames[0]")
        base, _ = _resolve_baseline(model, start, baseline, float(config.cutoff), training, 1e-3)
    base.calc = None

    calc = MLIPCalculator(model, config, device=str(next(model.parameters()).device))
    w, pair_list = len(window), [(i, j)] + [(a, k) for a in (i, j) for k in range(n) if k not in (i, j)]
    out = {name: np.full(shape, np.nan) for name, shape in (
        ("energy", w), ("energy_attributions", (w, n)), ("energy_gap", w), ("energy_decomposition", (w, n)),
        ("projected_force", (w, 2)), ("baseline_projected_force", (w, 2)), ("force_attributions", (w, 2, n)),
        ("force_gap", (w, 2)), ("pair_values", (w, len(pair_list) if pairs else 0)), ("pair_error", w))}
    base_copy = base.copy()
    base_copy.calc = calc
    baseline_energy = float(base_copy.get_potential_energy())
    for f, frame in enumerate(window):
        work = frame.copy()
        work.calc = calc
        out["energy"][f] = work.get_potential_energy()
        out["energy_decomposition"][f] = binding_contributions(frame, calc)
        aligned = base
        if method == "ig":
            r = integrated_gradients(model, frame, cutoff=float(config.cutoff), baseline=base, n_steps=n_steps,
                                     tol=tol, max_steps=max_steps)
            out["energy_attributions"][f], out["energy_gap"][f] = r.atom_attributions, r.completeness_gap
            aligned = r.baseline
        else:
            out["energy_attributions"][f] = saliency(model, frame)
        for s, (a, b) in enumerate(((i, j), (j, i))):
            fa = force_attributions(model, frame, a, partner=b, method=method, baseline=aligned, n_steps=n_steps,
                                    tol=force_tol, max_steps=max_steps)
            out["projected_force"][f, s], out["force_attributions"][f, s] = fa.value, fa.atom_attributions
            if method == "ig":
                out["baseline_projected_force"][f, s], out["force_gap"][f, s] = fa.baseline_value, fa.completeness_gap
        if pairs:
            rel = pair_relevance(model, frame)
            out["pair_values"][f] = [rel.pair[a, b] for a, b in pair_list]
            out["pair_error"][f] = rel.conservation_error
    if pairs:
        rel0 = pair_relevance(model, base)
        base_pairs = np.array([rel0.pair[a, b] for a, b in pair_list])
        pair_scores = np.abs(out["pair_values"][-1] - base_pairs)
        pair_arr = np.array(pair_list, dtype=int)
    else:
        base_pairs, pair_scores, pair_arr = np.zeros(0), np.zeros(0), np.zeros((0, 2), dtype=int)
    atom_scores = np.abs(out["energy_attributions"][-1])
    with np.errstate(invalid="ignore"):
        pos = np.stack([fr.get_positions() for fr in frames])
        distance = np.linalg.norm(pos[:, i] - pos[:, j], axis=-1)
    return FailureAttribution(
        frames=window, frame_indices=indices, offending=(i, j), symbols=frames[-1].get_chemical_symbols(),
        method=method, distance_A=distance, energy=out["energy"], baseline=base, baseline_energy=baseline_energy,
        energy_attributions=out["energy_attributions"], energy_gap=out["energy_gap"],
        energy_decomposition=out["energy_decomposition"], projected_force=out["projected_force"],
        baseline_projected_force=out["baseline_projected_force"], force_attributions=out["force_attributions"],
        force_gap=out["force_gap"], pairs=pair_arr, pair_values=out["pair_values"], baseline_pair_values=base_pairs,
        pair_conservation_error=out["pair_error"], atom_scores=atom_scores,
        atom_ranking=np.argsort(-atom_scores, kind="stable"), pair_scores=pair_scores,
        pair_ranking=np.argsort(-pair_scores, kind="stable"),
        energy_unit="eV" if method == "ig" else "eV/Å", force_unit="eV/Å" if method == "ig" else "eV/Å²",
        dt_fs=dt_fs,
    )
