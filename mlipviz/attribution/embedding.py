"""Layer Integrated Gradients on the atom-type embedding, through a continuous per-atom mask.

Atom types enter a SchNetPack potential as integer indices into an embedding table, so there is no
continuous input to integrate along. Instead each atom's embedding vector e_i is scaled by a mask m_i, and
Integrated Gradients runs on the mask from 0 (every embedding a zero vector, geometry unchanged) to 1 (the
model). Because ∂E/∂m_i = e_i · ∂E/∂h_i at h = m e, this equals layer IG on the embedding's output with a
zero-embedding baseline, summed over features. The attributions say how much each atom's *identity* (as the
network encodes it) contributes to E(x) − E(x with every embedding zero), in eV; they sum to it up to the
completeness gap, which is driven below a tolerance by doubling the quadrature points.

References:
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (Integrated Gradients).
    Mudrakarta et al., ACL 2018, arXiv:1805.05492 (IG on embedding layers).
    Kokhlikyan et al., arXiv:2009.07896 (2020) (captum ``LayerIntegratedGradients``).
"""

from __future__ import annotations

import torch
from ase import Atoms

from ..geometry import check_atoms, check_positive_int
from .integrated_gradients import DEFAULT_TOL, MAX_STEPS, AttributionResult, adaptive_ig, check_tolerance
from .model_function import energy_offset, masked_energy_function

__all__ = ["embedding_attributions"]


def embedding_attributions(
    model: torch.nn.Module,
    atoms: Atoms,
    n_steps: int | None = None,
    tol: float = DEFAULT_TOL,
    max_steps: int = MAX_STEPS,
) -> AttributionResult:
    """IG of the model energy on a per-atom mask of the atom-type embedding (zero-embedding baseline).

    Args:
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model`.
        atoms: Structure, Å.
        n_steps: A fixed number of Gauss–Legendre points; None (default) doubles from 16 until the gap < ``tol``.
        tol: Completeness tolerance, eV.
        max_steps: Most points when adapting.

    Returns:
        An :class:`~mlipviz.attribution.AttributionResult`: ``atom_attributions`` (n_atoms,) eV summing to
        ``energy − baseline_energy`` (the energy with every embedding zeroed); ``coordinate_attributions`` and
        ``baseline`` are None.
    """
    check_atoms(atoms)
    if n_steps is not None:
        n_steps = check_positive_int(n_steps, "n_steps")
    tol = check_tolerance(tol)
    max_steps = check_positive_int(max_steps, "max_steps")
    model = model.eval()
    device = next(model.parameters()).device
    g = masked_energy_function(model, atoms)
    m1 = torch.ones(1, len(atoms), device=device)
    m0 = torch.zeros_like(m1)
    with torch.no_grad():
        e_x, e_0 = (float(v) for v in g(torch.cat([m1, m0])).double())
    attr, steps, gap, converged = adaptive_ig(g, m1, m0, e_x - e_0, n_steps, tol, max_steps,
                                              what="Integrated Gradients on the embedding mask")
    offset = energy_offset(model, atoms)
    return AttributionResult(
        atom_attributions=attr,
        coordinate_attributions=None,
        energy=e_x + offset,
        baseline_energy=e_0 + offset,
        completeness_gap=gap,
        baseline=None,
        n_steps=steps,
        tolerance=tol,
        converged=converged,
        baseline_kind="zero embedding",
        method="Integrated Gradients on the atom-type embedding (per-atom mask)",
    )
