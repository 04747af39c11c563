"""LRP-0 forward passes of SchNetPack's SchNet and PaiNN that are exactly linear in their relevance sources.

Layer-wise relevance propagation with the LRP-0 rule equals gradient × input on a network whose
nonlinearities are frozen at their values at the input. This module writes that frozen network for SchNet
and PaiNN:

* an activation y = φ(z) becomes y = z · [φ(z)/z], with the bracket held constant;
* a product of two factors that both depend on the sources keeps one factor constant: the scalar *gate*
  (a filter or context-network output) in PaiNN's scalar × vector products, as LRP does for LSTM gates
  (Arras et al. 2017), and half of each factor in PaiNN's inner product ⟨V μ, W μ⟩;
* PaiNN's norm ‖V μ‖ = sqrt(Σ (V μ)² + ε) becomes Σ (V μ) · [V μ / ‖V μ‖] plus the constant ε / ‖V μ‖.

What remains is linear in the **sources** and has the model's value at the input. The sources are the
atom-type embedding of each atom, the bias of every per-atom dense layer (one copy per atom, so that it
sits on a node of the graph), and PaiNN's ε constant. So gradient × input, summed over the sources,
equals the network's energy before SchNetPack's offsets, to rounding.

Walks (GNN-LRP): each source sits on one atom at one layer, and the atom states after every interaction
block are *boundaries*. Masks on the boundaries (x·m + x.detach()·(1 − m)) let relevance flow only
through chosen atoms at each layer, which is how walks and sets of atoms are selected.

References:
    Schnake et al., IEEE TPAMI 44, 7581 (2022), arXiv:2006.03589 (GNN-LRP, relevant walks).
    Montavon et al., in *Explainable AI*, LNCS 11700 (2019), doi:10.1007/978-3-030-28954-6_10 (LRP rules).
    Arras et al., arXiv:1706.07206 (2017) (LRP through multiplicative gates).
    Schütt et al., NeurIPS 2017, arXiv:1706.08566 (SchNet); Schütt, Unke, Gastegger, ICML 2021,
    arXiv:2102.03150 (PaiNN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from schnetpack.nn import scatter_add
from torch import nn

__all__ = ["Tape", "frozen_activation", "representation_forward", "head_forward", "SOURCE_KINDS"]

#: Kinds of relevance source: atom-type embeddings, per-atom biases, PaiNN's norm constant.
SOURCE_KINDS = ("embedding", "bias", "constant")


class Tape:
    """Sources and boundary masks of one batched frozen forward pass.

    Args:
        boundary_masks: (n_layers + 1, n_nodes) 0/1; row l masks the atom states after block l (row 0:
            the embeddings). Relevance flows only through nodes whose mask is 1.
        source_masks: (n_layers + 1, n_nodes) 0/1; row s says which nodes' layer-s sources are counted.
    """

    def __init__(self, boundary_masks: torch.Tensor, source_masks: torch.Tensor):
        self.boundary_masks = boundary_masks
        self.source_masks = source_masks
        self.sources: list[tuple[torch.Tensor, int, str]] = []

    def source(self, value: torch.Tensor, layer: int, kind: str) -> torch.Tensor:
        """Register ``value`` (first dimension: nodes) as a source entering at ``layer``; returns the leaf."""
        leaf = value.detach().clone().requires_grad_(True)
        self.sources.append((leaf, layer, kind))
        return leaf

    def boundary(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """``x`` with the same value, whose gradient passes only through the nodes unmasked at ``layer``."""
        m = self.boundary_masks[layer].reshape(-1, *([1] * (x.dim() - 1)))
        return x * m + x.detach() * (1 - m)

    def relevance(self, node_energy: torch.Tensor, idx_m: torch.Tensor, n_copies: int) -> dict[str, torch.Tensor]:
        """Gradient × input over the counted sources, per copy and per source kind, (n_copies,) each."""
        leaves = [leaf for leaf, _, _ in self.sources]
        grads = torch.autograd.grad(node_energy.sum(), leaves, allow_unused=True)
        out = {kind: node_energy.new_zeros(n_copies) for kind in SOURCE_KINDS}
        for (leaf, layer, kind), g in zip(self.sources, grads):
            if g is None:
                continue
            r = (leaf * g).reshape(leaf.shape[0], -1).sum(1) * self.source_masks[layer]
            out[kind] = out[kind].index_add(0, idx_m, r)
        return out


def frozen_activation(z: torch.Tensor, activation) -> torch.Tensor:
    """φ(z) written as z · [φ(z)/z] with the bracket constant: the LRP-0 rule for an activation.

    Raises:
        NotImplementedError: for an activation with φ(0) ≠ 0 (the frozen form would lose φ(0)).
    """
    if activation is None or isinstance(activation, nn.Identity):
        return z
    zero = activation(torch.zeros(1, dtype=z.dtype, device=z.device))
    if float(zero.abs()) > 0:
        raise NotImplementedError(f"Activation {activation!r} has φ(0) = {float(zero)} ≠ 0; LRP-0 needs φ(0) = 0.")
    safe = torch.where(z == 0, torch.ones_like(z), z)
    ratio = torch.where(z == 0, torch.full_like(z, 0.5), activation(safe) / safe)
    return z * ratio.detach()


def _dense(layer: nn.Linear, x: torch.Tensor, tape: Tape, layer_index: int) -> torch.Tensor:
    """A SchNetPack ``Dense`` (or ``nn.Linear``) with its bias as a per-node source at ``layer_index``."""
    if not isinstance(layer, nn.Linear):
        raise NotImplementedError(f"n-body relevance supports dense layers only, found {type(layer).__name__}.")
    z = F.linear(x, layer.weight)
    if layer.bias is not None:
        z = z + tape.source(layer.bias.expand(z.shape), layer_index, "bias")
    return frozen_activation(z, getattr(layer, "activation", None))


def _mlp(seq: nn.Module, x: torch.Tensor, tape: Tape, layer_index: int) -> torch.Tensor:
    layers = list(seq) if isinstance(seq, nn.Sequential) else [seq]
    for layer in layers:
        x = _dense(layer, x, tape, layer_index)
    return x


def _schnet(rep, z, r_ij, idx_i, idx_j, tape: Tape) -> torch.Tensor:
    n = len(z)
    d_ij = torch.norm(r_ij, dim=1)
    f_ij = rep.radial_basis(d_ij)
    rcut_ij = rep.cutoff_fn(d_ij)
    x = tape.boundary(tape.source(rep.embedding(z), 0, "embedding"), 0)
    for layer, block in enumerate(rep.interactions, start=1):
        h = _dense(block.in2f, x, tape, layer - 1)  # on the sending atom, before the message
        w_ij = block.filter_network(f_ij) * rcut_ij[:, None]  # depends on distances only: a weight
        v = scatter_add(h[idx_j] * w_ij, idx_i, dim_size=n)
        v = _mlp(block.f2out, v, tape, layer)  # on the receiving atom
        x = tape.boundary(x + v, layer)
    return x


def _painn(rep, z, r_ij, idx_i, idx_j, tape: Tape) -> torch.Tensor:
    n, nf = len(z), rep.n_atom_basis
    d_ij = torch.norm(r_ij, dim=1, keepdim=True)
    dir_ij = r_ij / d_ij
    filters = rep.filter_net(rep.radial_basis(d_ij)) * rep.cutoff_fn(d_ij)[..., None]
    if rep.share_filters:
        filter_list = [filters] * rep.n_interactions
    else:
        filter_list = torch.split(filters, 3 * nf, dim=-1)
    q = tape.boundary(tape.source(rep.embedding(z)[:, None], 0, "embedding"), 0)
    mu = torch.zeros((n, 3, nf), dtype=q.dtype, device=q.device)
    for layer, (inter, mix) in enumerate(zip(rep.interactions, rep.mixing), start=1):
        # Interaction: messages from j to i; the context net runs on the sender (sources at layer - 1).
        x = filter_list[layer - 1] * _mlp(inter.interatomic_context_net, q, tape, layer - 1)[idx_j]
        dq, dmu_r, dmu_mu = torch.split(x, nf, dim=-1)
        dq = scatter_add(dq, idx_i, dim_size=n)
        dmu = dmu_r * dir_ij[..., None] + dmu_mu.detach() * mu[idx_j]  # gate frozen, the vector carries
        mu = mu + scatter_add(dmu, idx_i, dim_size=n)
        q = q + dq
        # Mixing: per atom (sources at layer).
        mu_v, mu_w = torch.split(_dense(mix.mu_channel_mix, mu, tape, layer), nf, dim=-1)
        norm = torch.sqrt(torch.sum(mu_v**2, dim=-2, keepdim=True) + mix.epsilon)
        norm_lin = torch.sum(mu_v * (mu_v / norm).detach(), dim=-2, keepdim=True)
        norm_frozen = norm_lin + tape.source(norm - norm_lin, layer, "constant")
        x = _mlp(mix.intraatomic_context_net, torch.cat([q, norm_frozen], dim=-1), tape, layer)
        dq_intra, dmu_intra, dqmu_intra = torch.split(x, nf, dim=-1)
        inner = 0.5 * (torch.sum(mu_v * mu_w.detach(), dim=1, keepdim=True) + torch.sum(mu_v.detach() * mu_w, dim=1, keepdim=True))
        q = tape.boundary(q + dq_intra + dqmu_intra.detach() * inner, layer)
        mu = tape.boundary(mu + dmu_intra.detach() * mu_w, layer)
    return q.squeeze(1)


def representation_forward(rep, z, r_ij, idx_i, idx_j, tape: Tape) -> torch.Tensor:
    """Frozen scalar atom features, (n_nodes, n_atom_basis), of a SchNet or PaiNN representation.

    Args:
        rep: ``schnetpack.representation.SchNet`` or ``PaiNN``.
        z: (n_nodes,) atomic numbers.
        r_ij: (n_pairs, 3) vectors from atom i to atom j, Å.
        idx_i, idx_j: (n_pairs,) receiving and sending atom of each pair.
        tape: Records the sources and holds the masks.
    """
    import schnetpack as spk

    if isinstance(rep, spk.representation.PaiNN):
        return _painn(rep, z, r_ij, idx_i, idx_j, tape)
    if isinstance(rep, spk.representation.SchNet):
        return _schnet(rep, z, r_ij, idx_i, idx_j, tape)
    raise NotImplementedError(f"no LRP rules for {type(rep).__name__}")


def head_forward(head, x: torch.Tensor, tape: Tape, layer_index: int) -> torch.Tensor:
    """Frozen per-atom energies, (n_nodes,) eV, of an ``Atomwise`` head on features ``x``."""
    return _mlp(head.outnet, x, tape, layer_index)[:, 0]
