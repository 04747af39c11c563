"""n-body relevance of a SchNetPack potential's energy: 1-body, pair and triplet terms from GNN-LRP.

GNN-LRP (Schnake et al. 2022) splits a message-passing network's output into relevances of *walks*:
sequences of atoms (i_s, …, i_L) along which a source entering at layer s reaches the output after L
interaction blocks. Bonneau et al. (2025) summed the walks by the set of atoms they visit to get 1-body,
2-body and 3-body contributions to the energy of SchNetPack's SchNet, PaiNN and SO3net potentials.

Here the walk relevances come from the LRP-0 rule in :mod:`mlipviz.attribution.lrp_rules` (gradient ×
input on the frozen network). Instead of enumerating every walk, the relevance W(S) of all walks that stay
inside a set S of atoms is one masked backward pass, and the relevance of the walks that visit *exactly*
S follows by inclusion–exclusion (Möbius inversion):

    R₁(i) = W({i}),   R₂(i, j) = W({i, j}) − W({i}) − W({j}),
    R₃(i, j, k) = W({i, j, k}) − W(ij) − W(ik) − W(jk) + W(i) + W(j) + W(k).

All the sets are run as copies of the molecule in one batch. Walks can only step between atoms closer than
the cutoff, so a pair beyond it and a triplet that is not connected within it get exactly zero.

**What is exact.** The frozen network is linear in its sources and has the model's value, so the
relevance of all walks, W(all atoms), equals the model energy minus the constant SchNetPack adds after the
network (``AddOffsets``: the training set's mean energy per atom times the number of atoms). The result
reports that offset and the conservation error W(all) + offset − E, computed in float64 (about 1e-12 eV).
The relevance of walks that visit more than ``max_order`` atoms is reported as one number (the rest),
so 1-body + pairs + triplets + rest = W(all).

**What is a choice.** LRP-0 freezes activations, and in PaiNN's products it lets the vector factor carry
the relevance; biases are sources like the embeddings, placed on the atom whose state they enter. Another
rule (ε, γ, or a different split of the products) gives different, equally conservative, pair values.

References:
    Schnake et al., IEEE TPAMI 44, 7581 (2022), arXiv:2006.03589 (GNN-LRP).
    Bonneau et al., Nat. Commun. 16, 9898 (2025), arXiv:2407.04526 (n-body relevance of SchNetPack models).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from schnetpack import properties

from .. import keys
from ..geometry import check_atoms
from .lrp_rules import SOURCE_KINDS, Tape, head_forward, representation_forward

__all__ = ["NBodyRelevance", "WalkRelevance", "nbody_relevance", "pair_relevance", "triplet_relevance", "walk_relevance"]

#: Largest number of (copies × pairs × features) held at once in one batched pass.
CHUNK_ELEMENTS = 20_000_000


@dataclass
class NBodyRelevance:
    """n-body relevances of a potential's energy, eV.

    ``one_body.sum() + pair[np.triu_indices(n, 1)].sum() + triplet_values.sum() + rest == total`` exactly,
    and ``total + offset == energy`` up to ``conservation_error``.

    Attributes:
        one_body: (n_atoms,) relevance of the walks that stay on one atom, eV.
        pair: (n_atoms, n_atoms) symmetric: pair[i, j] = pair[j, i] = relevance of the walks visiting exactly
            atoms i and j (counted once in the sum above); the diagonal holds ``one_body``. eV.
        triplets: (n_triplets, 3) atom indices i < j < k (empty unless ``max_order`` is 3).
        triplet_values: (n_triplets,) relevance of the walks visiting exactly those three atoms, eV.
        rest: relevance of walks that visit more than ``max_order`` atoms, eV.
        total: relevance of all walks, eV.
        energy: the model's energy, evaluated in float64 with SchNetPack's own modules, eV.
        offset: constant added after the network (AddOffsets), eV; not part of any relevance.
        conservation_error: total + offset − energy, eV.
        source_totals: relevance by kind of source ("embedding", "bias", "constant"), eV.
        max_order: highest body order resolved (1, 2 or 3).
        representation: "SchNet" or "PaiNN".
        n_interactions: interaction blocks of the model (walks visit at most n_interactions + 1 atoms).
    """

    one_body: np.ndarray
    pair: np.ndarray
    triplets: np.ndarray
    triplet_values: np.ndarray
    rest: float
    total: float
    energy: float
    offset: float
    conservation_error: float
    source_totals: dict = field(default_factory=dict)
    max_order: int = 3
    representation: str = ""
    n_interactions: int = 0

    def order_totals(self) -> dict:
        """Σ relevance by body order, eV: ``{1: …, 2: …, 3: …, "rest": …}``."""
        n = len(self.one_body)
        return {
            1: float(self.one_body.sum()),
            2: float(self.pair[np.triu_indices(n, 1)].sum()),
            3: float(self.triplet_values.sum()),
            "rest": self.rest,
        }

    def triplet_matrix(self) -> np.ndarray:
        """Triplet relevances as a dense symmetric (n, n, n) array, eV (zero where i, j, k are not distinct)."""
        n = len(self.one_body)
        out = np.zeros((n, n, n))
        for (i, j, k), v in zip(self.triplets, self.triplet_values):
            for a, b, c in itertools.permutations((i, j, k)):
                out[a, b, c] = v
        return out


@dataclass
class WalkRelevance:
    """Relevance of every walk (GNN-LRP), eV.

    Attributes:
        walks: (n_walks, n_interactions + 1) atom index at each boundary (0: embeddings, l: after block l);
            −1 before the walk's start layer.
        start_layer: (n_walks,) layer at which the walk's sources enter (0 for the embeddings).
        values: (n_walks,) relevance, eV.
        energy: model energy (float64), eV.
        offset: AddOffsets constant, eV.
        conservation_error: values.sum() + offset − energy, eV.
    """

    walks: np.ndarray
    start_layer: np.ndarray
    values: np.ndarray
    energy: float
    offset: float
    conservation_error: float

    def by_atom_set(self) -> dict[frozenset, float]:
        """Relevance summed over walks by the set of atoms they visit, eV."""
        out: dict[frozenset, float] = {}
        for walk, v in zip(self.walks, self.values):
            key = frozenset(int(a) for a in walk if a >= 0)
            out[key] = out.get(key, 0.0) + float(v)
        return out


@dataclass
class _Prepared:
    model: torch.nn.Module
    rep: torch.nn.Module
    head: torch.nn.Module
    z: torch.Tensor
    pos: torch.Tensor
    adjacency: np.ndarray  # (n, n) bool, pairs within the cutoff
    n_layers: int
    energy: float
    offset: float


def _energy_head(model):
    from schnetpack.atomistic import Atomwise

    for m in getattr(model, "output_modules", []):
        if isinstance(m, Atomwise) and m.output_key == keys.ENERGY:
            if m.aggregation_mode != "sum" or m.n_out != 1:
                raise NotImplementedError("n-body relevance needs an energy head that sums one value per atom.")
            return m
    raise TypeError("model has no Atomwise energy head; expected a potential built by mlipviz.potential.build_model.")


def _prepare(model, atoms: Atoms) -> _Prepared:
    import schnetpack as spk

    if isinstance(model, (str, Path)):
        from ..potential import load_model

        model, _ = load_model(model, device="cpu")
    if not isinstance(model, spk.model.NeuralNetworkPotential):
        raise TypeError(f"model must be a SchNetPack NeuralNetworkPotential or a saved-model directory, got {type(model).__name__}.")
    rep = model.representation
    if isinstance(rep, spk.representation.SO3net):
        raise NotImplementedError(
            "n-body relevance supports SchNet and PaiNN; SO3net is not implemented (its spherical-tensor products "
            "need their own LRP rules)."
        )
    if not isinstance(rep, (spk.representation.SchNet, spk.representation.PaiNN)):
        raise NotImplementedError(f"n-body relevance supports SchNet and PaiNN, not {type(rep).__name__}.")
    if len(rep.electronic_embeddings):
        raise NotImplementedError("n-body relevance does not support electronic (charge/spin) embeddings.")
    head = _energy_head(model)
    check_atoms(atoms)
    if np.any(atoms.pbc):
        raise ValueError(f"atoms is periodic (pbc={atoms.pbc.tolist()}); n-body relevance handles isolated molecules only.")
    n_types = getattr(rep.embedding, "num_embeddings", None)
    if n_types is not None and atoms.numbers.max() >= n_types:
        raise ValueError(f"atoms has atomic number {atoms.numbers.max()}, beyond the model's {n_types} embedded types.")

    work = copy.deepcopy(model).to(torch.float64).eval()
    for p in work.parameters():
        p.requires_grad_(False)
    rep, head = work.representation, _energy_head(work)
    device = next(work.parameters()).device
    z = torch.as_tensor(atoms.numbers, device=device)
    pos = torch.as_tensor(atoms.get_positions(), dtype=torch.float64, device=device)
    d = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    adjacency = (d < float(rep.cutoff)) & ~np.eye(len(atoms), dtype=bool)

    from ..potential.model import energy_offset_per_atom

    offset = float(energy_offset_per_atom(work, z).sum())
    n = len(atoms)
    ii, jj = np.where(~np.eye(n, dtype=bool))
    inputs = _batch(z, pos, 1, ii, jj)
    for m in work.input_modules:
        inputs = m(inputs)
    inputs = head(rep(inputs))
    energy = float(inputs[keys.ENERGY].sum()) + offset
    return _Prepared(work, rep, head, z, pos, adjacency, len(rep.interactions), energy, offset)


def _batch(z, pos, k: int, ii, jj) -> dict:
    """SchNetPack inputs for ``k`` copies of one molecule with the pairs (ii, jj) in each."""
    n, device = len(z), z.device
    idx_i = torch.as_tensor(ii, device=device, dtype=torch.long)
    idx_j = torch.as_tensor(jj, device=device, dtype=torch.long)
    shift = (torch.arange(k, device=device) * n).repeat_interleave(len(ii))
    return {
        properties.Z: z.repeat(k),
        properties.R: pos.repeat(k, 1),
        properties.idx_m: torch.arange(k, device=device).repeat_interleave(n),
        properties.n_atoms: torch.full((k,), n, device=device),
        properties.idx_i: idx_i.repeat(k) + shift,
        properties.idx_j: idx_j.repeat(k) + shift,
        properties.offsets: torch.zeros(k * len(ii), 3, dtype=pos.dtype, device=device),
    }


def _run(prep: _Prepared, boundary: np.ndarray, source: np.ndarray, all_pairs: bool) -> dict[str, np.ndarray]:
    """Relevance of masked copies: boundary and source masks (k, n_layers + 1, n) → per kind (k,) eV."""
    n, k_total = len(prep.z), len(boundary)
    adj = ~np.eye(n, dtype=bool) if all_pairs else prep.adjacency
    ii, jj = np.where(adj)
    width = 3 * prep.rep.n_atom_basis
    chunk = max(1, int(CHUNK_ELEMENTS // max(1, (len(ii) + n) * width)))
    out = {kind: [] for kind in SOURCE_KINDS}
    device = prep.z.device
    for start in range(0, k_total, chunk):
        b = torch.as_tensor(boundary[start : start + chunk], dtype=torch.float64, device=device)
        s = torch.as_tensor(source[start : start + chunk], dtype=torch.float64, device=device)
        k = len(b)
        inputs = _batch(prep.z, prep.pos, k, ii, jj)
        r_ij = inputs[properties.R][inputs[properties.idx_j]] - inputs[properties.R][inputs[properties.idx_i]]
        tape = Tape(b.permute(1, 0, 2).reshape(prep.n_layers + 1, -1), s.permute(1, 0, 2).reshape(prep.n_layers + 1, -1))
        x = representation_forward(prep.rep, inputs[properties.Z], r_ij, inputs[properties.idx_i], inputs[properties.idx_j], tape)
        node_energy = head_forward(prep.head, x, tape, prep.n_layers)
        for kind, r in tape.relevance(node_energy, inputs[properties.idx_m], k).items():
            out[kind].append(r.detach().cpu().numpy())
    return {kind: np.concatenate(v) if v else np.zeros(0) for kind, v in out.items()}


def _connected(subset, adjacency) -> bool:
    """Whether atoms ``subset`` form a connected graph with edges within the cutoff."""
    seen, todo = {subset[0]}, [subset[0]]
    while todo:
        a = todo.pop()
        for b in subset:
            if b not in seen and adjacency[a, b]:
                seen.add(b)
                todo.append(b)
    return len(seen) == len(subset)


def nbody_relevance(model, atoms: Atoms, max_order: int = 3, prune: bool = True) -> NBodyRelevance:
    """1-body, pair and (for ``max_order=3``) triplet relevances of the model energy of ``atoms``, eV.

    Args:
        model: A SchNet or PaiNN potential from :func:`mlipviz.potential.build_model` or
            :func:`mlipviz.potential.load_model`, or the directory of a saved model. It is not modified.
        atoms: An isolated molecule, Å.
        max_order: 1, 2 or 3: the highest body order resolved; the rest is reported as one number.
        prune: Skip pairs beyond the cutoff and triplets not connected within it, whose relevance is
            exactly zero because no walk visits them (``False`` computes them all, and uses every pair of
            atoms as a neighbour: a locality check).

    Returns:
        An :class:`NBodyRelevance`.

    Raises:
        ValueError: for empty or periodic ``atoms``, NaN positions, overlapping atoms, a bad ``max_order``.
        TypeError: if ``model`` is not a SchNetPack potential with an Atomwise energy head.
        NotImplementedError: for SO3net and other representations.
    """
    if isinstance(max_order, bool) or max_order not in (1, 2, 3):
        raise ValueError(f"max_order must be 1, 2 or 3, got {max_order!r}.")
    prep = _prepare(model, atoms)
    n, n_b = len(atoms), prep.n_layers + 1
    subsets = [tuple(range(n))]
    for order in range(1, min(max_order, n) + 1):
        for s in itertools.combinations(range(n), order):
            if order == 1 or not prune or _connected(s, prep.adjacency):
                subsets.append(s)
    masks = np.zeros((len(subsets), n_b, n))
    for k, s in enumerate(subsets):
        masks[k][:, list(s)] = 1.0
    by_kind = _run(prep, masks, masks, all_pairs=not prune)
    w_all = {s: sum(by_kind[kind][k] for kind in SOURCE_KINDS) for k, s in enumerate(subsets)}

    one = np.array([w_all[(i,)] for i in range(n)])
    pair, r2 = np.diag(one), {}
    for s in subsets[1:]:  # subsets[0] is the whole molecule
        if len(s) == 2:
            r2[s] = w_all[s] - one[s[0]] - one[s[1]]
            pair[s[0], s[1]] = pair[s[1], s[0]] = r2[s]
    triplets, values = [], []
    for s in subsets[1:]:
        if len(s) == 3:  # pairs pruned from the list are exactly zero
            triplets.append(s)
            inner = sum(r2.get(p, 0.0) for p in itertools.combinations(s, 2))
            values.append(w_all[s] - inner - one[list(s)].sum())
    total = float(w_all[subsets[0]])
    triplet_values = np.array(values, dtype=float)
    rest = total - one.sum() - sum(r2.values()) - triplet_values.sum()
    return NBodyRelevance(
        one_body=one,
        pair=pair,
        triplets=np.array(triplets, dtype=int).reshape(-1, 3),
        triplet_values=triplet_values,
        rest=float(rest),
        total=total,
        energy=prep.energy,
        offset=prep.offset,
        conservation_error=total + prep.offset - prep.energy,
        source_totals={kind: float(by_kind[kind][0]) for kind in SOURCE_KINDS},
        max_order=max_order,
        representation=type(prep.rep).__name__,
        n_interactions=prep.n_layers,
    )


def pair_relevance(model, atoms: Atoms, prune: bool = True) -> NBodyRelevance:
    """1-body and 2-body relevances, eV: :func:`nbody_relevance` with ``max_order=2`` (see there)."""
    return nbody_relevance(model, atoms, max_order=2, prune=prune)


def triplet_relevance(model, atoms: Atoms, prune: bool = True) -> NBodyRelevance:
    """1-, 2- and 3-body relevances, eV: :func:`nbody_relevance` with ``max_order=3`` (see there)."""
    return nbody_relevance(model, atoms, max_order=3, prune=prune)


def walk_relevance(model, atoms: Atoms, max_walks: int = 20_000) -> WalkRelevance:
    """Relevance of every walk along pairs within the cutoff (GNN-LRP), one masked copy per walk, eV.

    Costs one copy of the molecule per walk, about n_atoms^(n_interactions + 1) of them: meant for small
    molecules, and as an independent check of :func:`nbody_relevance`.

    Args:
        model: As in :func:`nbody_relevance`.
        atoms: An isolated molecule, Å.
        max_walks: Refuse when there are more walks than this.

    Raises:
        ValueError: for bad ``atoms`` or when the walks outnumber ``max_walks`` (the count is named).
    """
    prep = _prepare(model, atoms)
    n, n_layers = len(atoms), prep.n_layers
    step = prep.adjacency | np.eye(n, dtype=bool)
    walks, starts = [], []
    for s in range(n_layers + 1):
        paths = [[a] for a in range(n)]
        for _ in range(s, n_layers):
            paths = [p + [b] for p in paths for b in np.flatnonzero(step[p[-1]])]
            if len(walks) + len(paths) > max_walks:
                raise ValueError(f"more than max_walks={max_walks} walks; use nbody_relevance for this molecule.")
        walks += [[-1] * s + p for p in paths]
        starts += [s] * len(paths)
    walks_arr = np.array(walks, dtype=int)
    boundary = np.ones((len(walks), n_layers + 1, n))
    source = np.zeros((len(walks), n_layers + 1, n))
    for k, (walk, s) in enumerate(zip(walks_arr, starts)):
        for layer in range(s, n_layers + 1):
            boundary[k, layer] = 0.0
            boundary[k, layer, walk[layer]] = 1.0
        source[k, s, walk[s]] = 1.0
    by_kind = _run(prep, boundary, source, all_pairs=False)
    values = sum(by_kind[kind] for kind in SOURCE_KINDS)
    return WalkRelevance(
        walks=walks_arr,
        start_layer=np.array(starts, dtype=int),
        values=values,
        energy=prep.energy,
        offset=prep.offset,
        conservation_error=float(values.sum()) + prep.offset - prep.energy,
    )
