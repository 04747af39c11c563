"""mlipviz.attribution.nbody (GNN-LRP n-body relevance) and mlipviz.views.bonds (pairs drawn as bonds).

Independent references: the model's own energy and per-atom energies from SchNetPack's modules; the
relevance of every walk, enumerated one by one, against the inclusion–exclusion over sets of atoms;
rotations and the C2v symmetry of water; fragments beyond the cutoff against the isolated fragments.
"""

import copy

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from schnetpack import properties

from mlipviz import keys
from mlipviz.attribution.nbody import nbody_relevance, pair_relevance, triplet_relevance, walk_relevance
from mlipviz.potential import ModelConfig, build_model, load_model
from mlipviz.potential.model import energy_offset_per_atom


@pytest.fixture(scope="module")
def painn_water_and_config(embedded_model_dir):
    return load_model(embedded_model_dir, device="cpu")


@pytest.fixture(scope="module")
def painn_water(painn_water_and_config):
    return painn_water_and_config[0]


def _untrained(representation, seed=0, **kw):
    """A small untrained model with random biases and a non-zero offset, so every source kind carries relevance."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(representation=representation, n_atom_basis=16, n_interactions=3, n_rbf=8, **kw))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.3)
        for m in model.modules():
            if hasattr(m, "add_mean"):
                m.mean.fill_(-3.0)
    return model.eval()


@pytest.fixture(scope="module")
def schnet():
    return _untrained("schnet")


@pytest.fixture(scope="module")
def painn():
    return _untrained("painn", seed=1)


def _per_atom_energies(model, atoms):
    """ε_i + offset_i (eV) from SchNetPack's own modules in float64, all pairs as neighbours."""
    work = copy.deepcopy(model).double()
    n = len(atoms)
    ii, jj = np.where(~np.eye(n, dtype=bool))
    z = torch.as_tensor(atoms.numbers)
    inputs = {
        properties.Z: z,
        properties.R: torch.as_tensor(atoms.positions, dtype=torch.float64),
        properties.idx_m: torch.zeros(n, dtype=torch.long),
        properties.n_atoms: torch.tensor([n]),
        properties.idx_i: torch.as_tensor(ii),
        properties.idx_j: torch.as_tensor(jj),
        properties.offsets: torch.zeros(len(ii), 3, dtype=torch.float64),
    }
    for m in work.input_modules:
        inputs = m(inputs)
    inputs = work.representation(inputs)
    head = next(m for m in work.output_modules if getattr(m, "output_key", None) == keys.ENERGY)
    eps = head(inputs)[keys.ENERGIES].detach().reshape(-1)
    return (eps + energy_offset_per_atom(work, z)).numpy()


def test_conservation_on_water_with_the_shipped_painn(painn_water_and_config, water_distorted):
    from mlipviz.potential import MLIPCalculator

    painn_water, config = painn_water_and_config
    res = triplet_relevance(painn_water, water_distorted)
    assert res.representation == "PaiNN" and res.n_interactions == 3
    assert abs(res.conservation_error) < 1e-9
    calc_atoms = water_distorted.copy()
    calc_atoms.calc = MLIPCalculator(painn_water, config, device="cpu")  # the float32 model as users call it
    assert res.energy == pytest.approx(calc_atoms.get_potential_energy(), abs=2e-3)
    assert res.total == pytest.approx(res.energy - res.offset, abs=1e-9)
    assert abs(res.source_totals["bias"]) > 1e-3  # the trained biases carry relevance of their own
    assert sum(res.order_totals().values()) == pytest.approx(res.total, abs=1e-12)
    assert np.abs(res.pair[np.triu_indices(3, 1)]).max() > 0.01


def test_conservation_on_ethanol_with_an_untrained_schnet(schnet):
    eth = molecule("CH3CH2OH")
    res = nbody_relevance(schnet, eth)
    assert abs(res.conservation_error) < 1e-9
    assert res.energy == pytest.approx(_per_atom_energies(schnet, eth).sum(), abs=1e-9)
    assert res.offset == pytest.approx(-3.0 * len(eth))
    assert abs(res.rest) > 1e-3  # three blocks: walks reach 4 atoms
    assert pair_relevance(schnet, eth).pair == pytest.approx(res.pair, abs=1e-12)


def test_lower_max_order_moves_the_higher_terms_into_the_rest(painn_water, water_distorted):
    full = triplet_relevance(painn_water, water_distorted)
    pairs = pair_relevance(painn_water, water_distorted)
    ones = nbody_relevance(painn_water, water_distorted, max_order=1)
    np.testing.assert_allclose(pairs.pair, full.pair, atol=1e-12)
    assert pairs.rest == pytest.approx(full.triplet_values.sum(), abs=1e-12)
    assert np.count_nonzero(ones.pair - np.diag(ones.one_body)) == 0
    assert ones.rest == pytest.approx(full.total - full.one_body.sum(), abs=1e-12)


@pytest.mark.parametrize("which", ["schnet", "painn"])
def test_walks_agree_with_inclusion_exclusion(which, request):
    """Every walk enumerated and summed by the set of atoms it visits gives the same 1-, 2-, 3- and 4-body terms."""
    model = request.getfixturevalue(which)
    nh3 = molecule("NH3")
    res = nbody_relevance(model, nh3)
    walks = walk_relevance(model, nh3)
    assert abs(walks.conservation_error) < 1e-9
    by_set = walks.by_atom_set()
    for i in range(4):
        assert by_set[frozenset([i])] == pytest.approx(res.one_body[i], abs=1e-10)
        for j in range(i + 1, 4):
            assert by_set[frozenset([i, j])] == pytest.approx(res.pair[i, j], abs=1e-10)
    for t, v in zip(res.triplets, res.triplet_values):
        assert by_set[frozenset(t.tolist())] == pytest.approx(v, abs=1e-10)
    assert len(res.triplets) == 4
    assert by_set[frozenset(range(4))] == pytest.approx(res.rest, abs=1e-10)
    assert abs(res.rest) > 1e-4


@pytest.mark.parametrize("which", ["schnet", "painn"])
def test_walks_ending_on_an_atom_sum_to_its_energy(which, request):
    """Σ over walks ending on atom i = SchNetPack's per-atom energy ε_i (offset removed)."""
    model = request.getfixturevalue(which)
    atoms = molecule("CH4")
    atoms.positions += np.random.default_rng(3).normal(0, 0.05, atoms.positions.shape)
    walks = walk_relevance(model, atoms)
    ending = np.bincount(walks.walks[:, -1], weights=walks.values, minlength=len(atoms))
    expected = _per_atom_energies(model, atoms) - walks.offset / len(atoms)
    np.testing.assert_allclose(ending, expected, atol=1e-9)


def test_c2v_water_and_rotation(painn_water, water_reference):
    res = triplet_relevance(painn_water, water_reference)
    assert res.pair[0, 1] == pytest.approx(res.pair[0, 2], abs=1e-10)
    assert res.one_body[1] == pytest.approx(res.one_body[2], abs=1e-10)
    assert abs(res.pair[0, 1] - res.pair[1, 2]) > 1e-3  # O–H and H–H differ: the check can fail
    moved = water_reference.copy()
    moved.rotate(73, (0.3, -1.0, 0.4), center="COM")
    moved.translate((2.0, -1.0, 0.5))
    again = triplet_relevance(painn_water, moved)
    np.testing.assert_allclose(again.pair, res.pair, atol=1e-10)
    np.testing.assert_allclose(again.triplet_values, res.triplet_values, atol=1e-10)


def test_rotation_and_permutation_on_ethanol(painn):
    eth = molecule("CH3CH2OH")
    res = nbody_relevance(painn, eth)
    perm = np.random.default_rng(0).permutation(len(eth))
    moved = eth[perm]
    moved.rotate(140, (1.0, 2.0, -0.5), center="COM")
    again = nbody_relevance(painn, moved)
    np.testing.assert_allclose(again.pair, res.pair[np.ix_(perm, perm)], atol=1e-10)
    assert again.rest == pytest.approx(res.rest, abs=1e-10)


def test_locality_beyond_the_cutoff(painn_water, water_distorted):
    """A second water and an H atom beyond the 5 Å cutoff: zero pairs across, each fragment as if alone."""
    far_water = water_distorted.copy()
    far_water.translate((0.0, 0.0, 7.0))
    h = Atoms("H", positions=[(8.0, 0.0, 0.0)])
    combined = water_distorted + far_water + h
    res = triplet_relevance(painn_water, combined, prune=False)  # every pair computed, every pair a neighbour
    alone = triplet_relevance(painn_water, water_distorted)
    assert abs(res.conservation_error) < 1e-9
    assert np.abs(res.pair[:3, 3:]).max() < 1e-10 and np.abs(res.pair[3:6, 6]).max() < 1e-10
    np.testing.assert_allclose(res.pair[:3, :3], alone.pair, atol=1e-10)
    np.testing.assert_allclose(res.pair[3:6, 3:6], alone.pair, atol=1e-10)
    cross = [v for t, v in zip(res.triplets, res.triplet_values) if len({a // 3 for a in t}) > 1]
    assert len(cross) > 0 and np.abs(cross).max() < 1e-10
    lone_h = triplet_relevance(painn_water, h)
    assert res.one_body[6] == pytest.approx(lone_h.energy - lone_h.offset, abs=1e-10)
    pruned = triplet_relevance(painn_water, combined)
    np.testing.assert_allclose(pruned.pair, res.pair, atol=1e-10)
    assert len(pruned.triplets) == 2


def test_saved_directory_is_accepted(painn_water, embedded_model_dir, water_distorted):
    by_dir = pair_relevance(embedded_model_dir, water_distorted)
    np.testing.assert_allclose(by_dir.pair, pair_relevance(painn_water, water_distorted).pair, atol=1e-12)


def test_bad_input_is_refused(painn_water, water_reference, schnet):
    nan = water_reference.copy()
    nan.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        nbody_relevance(painn_water, nan)
    with pytest.raises(ValueError, match="no atoms"):
        nbody_relevance(painn_water, Atoms())
    periodic = water_reference.copy()
    periodic.cell, periodic.pbc = np.eye(3) * 10, True
    with pytest.raises(ValueError, match="periodic"):
        nbody_relevance(painn_water, periodic)
    with pytest.raises(ValueError, match="max_order must be 1, 2 or 3"):
        nbody_relevance(painn_water, water_reference, max_order=4)
    with pytest.raises(TypeError, match="NeuralNetworkPotential"):
        nbody_relevance(torch.nn.Linear(3, 1), water_reference)
    so3 = build_model(ModelConfig(representation="so3net", n_atom_basis=8, n_interactions=1, n_rbf=4, lmax=1))
    with pytest.raises(NotImplementedError, match="SO3net is not implemented"):
        nbody_relevance(so3, water_reference)
    with pytest.raises(ValueError, match="more than max_walks=50"):
        walk_relevance(schnet, molecule("CH4"), max_walks=50)


# --- views.bonds -------------------------------------------------------------------------------------------


def test_pair_plot_colours_map_the_values(painn_water, water_distorted):
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from mlipviz.views.bonds import plot_pair_values
    from mlipviz.views.ngl import COLOR_SCALE, face_camera

    res = pair_relevance(painn_water, water_distorted)
    fig = plot_pair_values(water_distorted, res.pair)
    assert isinstance(fig, matplotlib.figure.Figure)
    fig.canvas.draw()
    lines = next(c for c in fig.axes[0].collections if isinstance(c, LineCollection))
    xy = face_camera([water_distorted])[0].positions[:, :2]
    vmax = np.abs(res.pair[np.triu_indices(3, 1)]).max()
    cmap = matplotlib.colormaps[COLOR_SCALE]
    segments = lines.get_segments()
    assert len(segments) == 3  # both O–H bonds and the H–H pair
    for seg, colour in zip(segments, lines.get_colors()):
        i, j = sorted(int(np.argmin(np.linalg.norm(xy - end, axis=1))) for end in seg)
        expected = cmap((res.pair[i, j] + vmax) / (2 * vmax))
        np.testing.assert_allclose(colour, expected, atol=1e-6)
    colourbar = fig.axes[-1]
    assert "eV" in colourbar.get_ylabel()
    plt.close(fig)


def test_pair_plot_refuses_bad_input(water_reference):
    from mlipviz.views.bonds import plot_pair_values

    with pytest.raises(ValueError, match=r"\(3, 3\) array"):
        plot_pair_values(water_reference, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        plot_pair_values(water_reference, np.array([[0, np.nan, 0], [np.nan, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="symmetric"):
        plot_pair_values(water_reference, np.triu(np.ones((3, 3))))
    nan = water_reference.copy()
    nan.positions[0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        plot_pair_values(nan, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no atoms"):
        plot_pair_values(Atoms(), np.zeros((0, 0)))


def test_ngl_pair_view_sends_one_cylinder_per_pair(water_reference):
    from mlipviz.views.bonds import view_pair_values

    pair = np.array([[0.0, -2.0, -2.0], [-2.0, 0.0, 0.5], [-2.0, 0.5, 0.0]])
    box = view_pair_values(water_reference, pair)
    buffers = [m for m in box.view._ngl_msg_archive if m.get("methodName") == "addBuffer"]
    assert len(buffers) == 1
    kw = buffers[0]["kwargs"]
    assert len(kw["radius"]) == 3 and len(kw["position1"]) == 9
    assert kw["radius"][0] == pytest.approx(2 * kw["radius"][2] / 1.25)  # |−2| / 2 → 2×; |0.5| / 2 → 1.25×
    png = box.children[1].value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
