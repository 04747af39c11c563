"""Neighbour lists for batched MD: vesin pairs per system, and a Verlet list with a skin for the whole batch.

A Verlet list (Verlet 1967) holds every pair within ``cutoff + skin`` and is rebuilt only once some atom has moved
more than ``skin / 2`` since the last build; in between, the pairs within ``cutoff`` are cut from it. Padding the pair
arrays to a fixed capacity keeps the shapes a compiled model sees the same from step to step.

References:
    Verlet, Phys. Rev. 159, 98 (1967), doi:10.1103/PhysRev.159.98.
"""

from __future__ import annotations

import time

import numpy as np
import torch

__all__ = ["SkinNeighborList", "pairs_within"]

#: A system whose atoms span more than this many cutoffs (or hold a non-finite position) gets no pairs: it has
#: exploded, and a cell list over its bounding box would be needlessly large. The MD engine reports it.
MAX_SPAN_CUTOFFS = 1000.0


def pairs_within(
    positions: torch.Tensor,
    cell_rows: torch.Tensor,
    pbc: torch.Tensor,
    system_idx: torch.Tensor,
    n_systems: int,
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j), i != j, closer than ``cutoff`` within each system (vesin, on the CPU).

    Args:
        positions: (n_atoms, 3) Å; the atoms of each system are contiguous.
        cell_rows: (n_systems, 3, 3) cell vectors as rows (ASE's convention), Å.
        pbc: (n_systems, 3) or (3,) periodicity.
        system_idx: (n_atoms,) system of each atom, sorted.
        n_systems: Number of systems.
        cutoff: Å.

    Returns:
        ``(idx_i, idx_j, offsets)``: global atom indices (long) and the Cartesian image offsets (Å) such that
        ``R[j] - R[i] + offset`` is the pair vector, on the device of ``positions``.
    """
    from vesin import NeighborList

    device, dtype = positions.device, positions.dtype
    pos = positions.detach().double().cpu().numpy()
    cells = cell_rows.detach().double().cpu().numpy().reshape(n_systems, 3, 3)
    periodic = pbc.detach().cpu().numpy().astype(bool)
    periodic = np.broadcast_to(periodic, (n_systems, 3)) if periodic.ndim == 1 else periodic
    counts = torch.bincount(system_idx.detach().cpu(), minlength=n_systems).numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    calculator = NeighborList(cutoff=float(cutoff), full_list=True)
    idx_i, idx_j, shifts, owners = [], [], [], []
    for s in range(n_systems):
        lo, n = int(starts[s]), int(counts[s])
        if periodic[s].any() and not periodic[s].all():
            raise ValueError("mixed periodicity within one system is not supported by vesin.")
        box = cells[s] if periodic[s].all() else np.zeros((3, 3))
        xyz = pos[lo : lo + n]
        if n == 0 or not np.isfinite(xyz).all() or np.ptp(xyz, axis=0).max() > MAX_SPAN_CUTOFFS * cutoff:
            continue  # an exploded system: no pairs (see MAX_SPAN_CUTOFFS)
        i, j, shift = calculator.compute(xyz, box, bool(periodic[s].all()), quantities="ijS")
        idx_i.append(i.astype(np.int64) + lo)
        idx_j.append(j.astype(np.int64) + lo)
        shifts.append(shift.astype(np.float64))
        owners.append(np.full(len(i), s, dtype=np.int64))
    if not idx_i:
        idx_i = idx_j = owners = [np.zeros(0, dtype=np.int64)]
        shifts = [np.zeros((0, 3))]
    idx_i, idx_j = np.concatenate(idx_i), np.concatenate(idx_j)
    shifts, owners = np.concatenate(shifts), np.concatenate(owners)
    offsets = np.einsum("pk,pkl->pl", shifts, cells[owners]) if len(owners) else np.zeros((0, 3))
    return (
        torch.from_numpy(idx_i).to(device),
        torch.from_numpy(idx_j).to(device),
        torch.from_numpy(offsets).to(device=device, dtype=dtype),
    )


class SkinNeighborList:
    """Verlet list for a batch of systems: built within ``cutoff + skin``, filtered to ``cutoff`` every step.

    Args:
        cutoff: The model's cutoff, Å.
        skin: Extra shell, Å. The list is rebuilt once some atom moved more than ``skin / 2`` since the last build,
            or a cell changed; 0 rebuilds every call.
        pad_multiple: Pad the pairs of each step to a fixed capacity, a multiple of this many pairs: at least the
            first count, growing (by at least 10 %) only when a step needs more room, so a compiled model sees one
            pair count instead of a new one every step. 0 disables padding (the count then changes every step).
        trim: Drop the pairs in the skin every step (one distance per listed pair, and one host sync for the
            compaction). Without it the model also runs over the skin pairs, which carry zero weight: in a liquid
            that is about ``((cutoff + skin) / cutoff)**3 - 1`` more pair work (73 % for 5 + 1 Å), for small
            molecules in vacuum next to nothing. None (default) decides at each build: trim when at least
            ``trim_above`` of the listed pairs lie in the skin.
        trim_above: Skin fraction above which ``trim=None`` trims.

    Padding pairs join the last atom to itself through an image ``3 * (cutoff + skin)`` away: beyond the cutoff,
    so the model's cosine cutoff gives them zero weight and zero force.

    Attributes:
        n_calls, n_builds: How often the list was asked for and how often it was rebuilt.
        build_seconds: Wall time spent in rebuilds, s.
        capacity: Current padded pair count (0 before the first call or without padding).
    """

    def __init__(
        self,
        cutoff: float,
        skin: float = 1.0,
        pad_multiple: int = 16,
        trim: bool | None = None,
        trim_above: float = 0.1,
    ):
        if not cutoff > 0:
            raise ValueError(f"cutoff must be a positive distance in Å, got {cutoff!r}.")
        if not skin >= 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin!r}.")
        self.cutoff, self.skin, self.pad_multiple = float(cutoff), float(skin), int(pad_multiple)
        self.trim, self.trim_above = trim, float(trim_above)
        self.trimming = bool(trim)  # the decision in force since the last build
        self.n_calls = self.n_builds = 0
        self.build_seconds = 0.0
        self.capacity = 0
        self._reference: tuple[torch.Tensor, torch.Tensor] | None = None
        self._listed: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def reset(self) -> None:
        """Force a rebuild at the next call."""
        self._reference = None

    def _needs_build(self, positions: torch.Tensor, cell_rows: torch.Tensor) -> bool:
        if self._reference is None or self.skin == 0:
            return True
        ref_pos, ref_cell = self._reference
        if ref_pos.shape != positions.shape or not torch.equal(ref_cell, cell_rows):
            return True
        moved = (positions.detach() - ref_pos).square().sum(dim=1)
        moved = torch.where(torch.isfinite(moved), moved, 0.0).max()  # NaN atoms: their system is reported
        return bool(moved > (0.5 * self.skin) ** 2)  # one host sync per step

    def _padded(self, idx_i: torch.Tensor, idx_j: torch.Tensor, offsets: torch.Tensor, n_atoms: int):
        n = len(idx_i)
        if n > self.capacity:  # the first count, then grow by at least 10 %
            grown = max(n, int(1.1 * self.capacity) if self.capacity else n)
            self.capacity = -(-grown // self.pad_multiple) * self.pad_multiple
        pad = self.capacity - n
        fill = torch.full((pad,), n_atoms - 1, dtype=idx_i.dtype, device=idx_i.device)
        far = torch.zeros((pad, 3), dtype=offsets.dtype, device=offsets.device)
        far[:, 0] = 3.0 * (self.cutoff + self.skin)
        return torch.cat([idx_i, fill]), torch.cat([idx_j, fill]), torch.cat([offsets, far])

    def __call__(
        self,
        positions: torch.Tensor,
        cell_rows: torch.Tensor,
        pbc: torch.Tensor,
        system_idx: torch.Tensor,
        n_systems: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(idx_i, idx_j, offsets)`` of the pairs within the cutoff now (or within ``cutoff + skin`` at the last
        build, without ``trim``), padded to the capacity."""
        self.n_calls += 1
        rebuilt = self._needs_build(positions, cell_rows)
        if rebuilt:
            t0 = time.perf_counter()
            self._listed = pairs_within(positions, cell_rows, pbc, system_idx, n_systems, self.cutoff + self.skin)
            self._reference = (positions.detach().clone(), cell_rows.detach().clone())
            if self.trim is None:
                i, j, off = self._listed
                pos = positions.detach()
                d2 = (pos[j] - pos[i] + off.to(pos.dtype)).square().sum(dim=1)
                self.trimming = bool((d2 >= self.cutoff**2).float().mean() >= self.trim_above) if len(i) else False
            else:
                self.trimming = bool(self.trim)
            self.n_builds += 1
            self.build_seconds += time.perf_counter() - t0
        if not self.trimming and not rebuilt:
            return self._pairs
        idx_i, idx_j, offsets = self._listed
        if self.trimming and self.skin > 0:
            pos = positions.detach()
            r = pos[idx_j] - pos[idx_i] + offsets.to(pos.dtype)
            keep = r.square().sum(dim=1) < self.cutoff**2
            idx_i, idx_j, offsets = idx_i[keep], idx_j[keep], offsets[keep]
        if self.pad_multiple > 0:
            idx_i, idx_j, offsets = self._padded(idx_i, idx_j, offsets, positions.shape[0])
        self._pairs = (idx_i, idx_j, offsets)
        return self._pairs
