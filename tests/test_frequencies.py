"""Harmonic frequencies: the model's autograd Hessian, reference Hessians, and the mode-by-mode comparison."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from ase import Atoms, units

from mlipviz.metrology.frequencies import compare_frequencies, frequency_comparison, plot_frequency_comparison
from mlipviz.potential import MLIPCalculator, load_model
from mlipviz.potential.hessian import model_hessian, model_normal_modes
from mlipviz.reference.hessian import reference_hessian, reference_normal_modes
from mlipviz.reference.sampling.normal_modes import HBAR, NormalModes, harmonic_analysis, pyscf_hessian

#: Water at CCSD(T)/cc-pVDZ (all electrons): harmonic wavenumbers, cm⁻¹, and the minimum (docs: FACTS.md).
CCSDT_CM = np.array([1691.4, 3824.6, 3931.0])
CCSDT_OH_A, CCSDT_HOH_DEG = 0.9658, 101.94


def water_at(r_A, angle_deg):
    t = np.radians(angle_deg) / 2
    return Atoms("OH2", positions=[(0, 0, 0), (0, r_A * np.sin(t), r_A * np.cos(t)), (0, -r_A * np.sin(t),
                                                                                       r_A * np.cos(t))])


@pytest.fixture(scope="module")
def calc(embedded_model_dir):
    return MLIPCalculator(embedded_model_dir, device="cpu")


@pytest.fixture(scope="module")
def model_modes(calc, water_reference):
    return model_normal_modes(calc, water_reference, device="cpu")


@pytest.fixture
def plt_close():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def c2_character(modes: NormalModes, k: int) -> float:
    """⟨e_k | C2 e_k⟩ for water (O first): +1 for a symmetric (A1) mode, −1 for an antisymmetric (B2) one."""
    pos = modes.atoms.positions
    axis = 0.5 * (pos[1] + pos[2]) - pos[0]
    axis /= np.linalg.norm(axis)
    rot = 2 * np.outer(axis, axis) - np.eye(3)  # 180° about the bisector
    e = modes.modes[k]
    return float(np.sum(e * (e[[0, 2, 1]] @ rot.T)))


# --- the model's Hessian -------------------------------------------------------------------------------------


def test_model_hessian_is_symmetric_and_matches_finite_differences(calc, water_distorted):
    h = model_hessian(calc, water_distorted, device="cpu")
    assert h.shape == (9, 9)
    assert np.abs(h - h.T).max() < 1e-8

    def central(step):
        fd = np.zeros((9, 9))
        for k in range(9):
            f = []
            for sign in (1, -1):
                a = water_distorted.copy()
                a.positions[k // 3, k % 3] += sign * step
                a.calc = calc
                f.append(a.get_forces().ravel())
            fd[:, k] = -(f[0] - f[1]) / (2 * step)
        return fd

    # Richardson: (4 D(h/2) − D(h)) / 3 cancels the O(h²) error of central differences (of float32 forces)
    fd = (4 * central(1e-3) - central(2e-3)) / 3
    np.testing.assert_allclose(h, fd, atol=0.02)  # eV/Å², on entries up to ~66
    # the rows sum to zero: a rigid translation changes no force
    np.testing.assert_allclose(h.reshape(9, 3, 3).sum(axis=1), 0, atol=1e-8)


def test_model_hessian_inputs(calc, embedded_model_dir, water_distorted):
    h = model_hessian(calc, water_distorted, device="cpu")
    model, config = load_model(embedded_model_dir, device="cpu")
    np.testing.assert_allclose(model_hessian(model, water_distorted, config=config, device="cpu"), h, atol=1e-10)
    np.testing.assert_allclose(model_hessian(embedded_model_dir, water_distorted, device="cpu"), h, atol=1e-10)
    h32 = model_hessian(calc, water_distorted, device="cpu", dtype=torch.float32)
    np.testing.assert_allclose(h32, h, atol=1e-3 * np.abs(h).max())
    assert next(calc.model.parameters()).dtype == torch.float32  # the calculator's model is left as it was
    with pytest.raises(ValueError, match="config is required"):
        model_hessian(model, water_distorted)
    with pytest.raises(ValueError, match="model_or_calculator"):
        model_hessian(42, water_distorted)
    with pytest.raises(ValueError, match="overlapping"):
        model_hessian(calc, Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.1)]))


def test_embedded_model_at_its_minimum_against_published_ccsdt(model_modes):
    """The embedded PaiNN gets the bend right, and puts the antisymmetric stretch ~110 cm⁻¹ low, below the
    symmetric one: pairing by order alone would hide part of that."""
    a = model_modes.atoms
    assert a.get_distance(0, 1) == pytest.approx(CCSDT_OH_A, abs=2e-3)
    assert a.get_angle(1, 0, 2) == pytest.approx(CCSDT_HOH_DEG, abs=0.5)
    # by C2 symmetry the model's modes are bend (A1), antisymmetric (B2), symmetric stretch (A1): swapped
    # against CCSD(T), where 3824.6 cm⁻¹ is the symmetric and 3931.0 cm⁻¹ the antisymmetric stretch
    assert [round(c2_character(model_modes, k)) for k in range(3)] == [1, -1, 1]
    by_order = compare_frequencies(model_modes, CCSDT_CM, threshold_cm=50)
    assert by_order.matching == "order"
    np.testing.assert_array_equal(by_order.flagged, [False, False, True])
    # the published values placed on the model's own eigenvectors by symmetry: overlap pairing finds the swap
    reference = with_frequencies(model_modes, CCSDT_CM[[0, 2, 1]])
    comp = compare_frequencies(model_modes, reference, threshold_cm=50)
    np.testing.assert_array_equal(comp.model_index, [0, 2, 1])
    np.testing.assert_allclose(comp.error_cm[:2], model_modes.frequencies_cm[[0, 2]] - CCSDT_CM[:2], atol=1e-6)
    assert np.all(np.abs(comp.error_cm[:2]) < 20)
    assert -150 < comp.error_cm[2] < -50 and comp.error_cm[2] < by_order.error_cm[2]
    lines = comp.table().splitlines()
    assert "off by" in lines[3] and not any("off by" in line for line in lines[1:3])


# --- the comparison ------------------------------------------------------------------------------------------


def with_frequencies(modes: NormalModes, freqs_cm, rotation=None) -> NormalModes:
    """``modes`` with its eigenvectors kept and its wavenumbers replaced (cm⁻¹), optionally rotated."""
    omega = np.asarray(freqs_cm) * units.invcm / HBAR
    vecs = modes.modes.reshape(len(omega), -1)
    sqm = np.repeat(np.sqrt(modes.atoms.get_masses()), 3)
    h = sqm[:, None] * (vecs.T @ np.diag(omega**2) @ vecs) * sqm[None, :]
    atoms = modes.atoms.copy()
    if rotation is not None:
        r = np.kron(np.eye(len(atoms)), rotation)
        h = r @ h @ r.T
        atoms.positions = atoms.positions @ rotation.T
    return harmonic_analysis(atoms, h)


def test_a_shifted_mode_is_flagged_and_a_swap_is_caught_by_overlap(model_modes, plt_close):
    from scipy.spatial.transform import Rotation

    f = model_modes.frequencies_cm
    shifted = with_frequencies(model_modes, f + [0, 0, 100], rotation=Rotation.from_euler("xyz", [20, 40, 60],
                                                                                          degrees=True).as_matrix())
    comp = compare_frequencies(shifted, model_modes)
    assert comp.matching == "overlap"
    np.testing.assert_allclose(comp.error_cm, [0, 0, 100], atol=0.01)
    np.testing.assert_allclose(comp.overlap, 1, atol=1e-6)  # the rotation is undone before the overlaps
    np.testing.assert_array_equal(comp.flagged, [False, False, True])
    ax = plot_frequency_comparison(comp)
    assert [p.get_facecolor()[0] > 0.5 for p in ax.patches[1:]] == [False, False, True]  # one red bar
    # a model that swaps the symmetric and antisymmetric stretch: by order nothing shows, by overlap both do
    swapped = with_frequencies(model_modes, f[[0, 2, 1]])
    assert np.all(np.abs(compare_frequencies(swapped, model_modes, match="order").error_cm) < 1e-6)
    by_overlap = compare_frequencies(swapped, model_modes)
    np.testing.assert_allclose(by_overlap.error_cm, [0, f[2] - f[1], f[1] - f[2]], atol=1e-6)
    with pytest.raises(ValueError, match="eigenvectors"):
        compare_frequencies(CCSDT_CM, model_modes, match="overlap")
    with pytest.raises(ValueError, match="modes"):
        compare_frequencies(CCSDT_CM[:2], model_modes)


# --- reference Hessians --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_finite_difference_hessian_matches_pyscf_analytic_hf(water_reference):
    """HF/sto-3g: 18 analytic gradients by central differences against PySCF's analytic Hessian."""
    fd = reference_hessian(water_reference, "HF/sto-3g", method="finite differences")
    analytic = pyscf_hessian(water_reference, "HF/sto-3g")
    np.testing.assert_allclose(fd, analytic, atol=0.01)  # eV/Å², on entries up to ~50
    opt = reference_normal_modes(water_reference, "HF/sto-3g")
    fd_modes = harmonic_analysis(opt.atoms, reference_hessian(opt.atoms, "HF/sto-3g", method="finite differences"))
    np.testing.assert_allclose(fd_modes.frequencies_cm, opt.frequencies_cm, atol=0.5)  # cm⁻¹


def test_reference_hessian_refuses_bad_requests(water_reference):
    with pytest.raises(ValueError, match="no analytic Hessian"):
        reference_hessian(water_reference, "CCSD(T)/cc-pVDZ", method="analytic")
    with pytest.raises(ValueError, match="method="):
        reference_hessian(water_reference, "HF/sto-3g", method="numerical")
    with pytest.raises(ValueError, match="step_A"):
        reference_hessian(water_reference, "MP2/sto-3g", step_A=0.0)


@pytest.mark.slow
def test_ccsdt_frequencies_of_water_match_the_published_values(calc):
    """CCSD(T)/cc-pVDZ: relax, Hessian from 18 analytic gradients, and the embedded model against it."""
    ref = reference_normal_modes(water_at(CCSDT_OH_A, CCSDT_HOH_DEG), "CCSD(T)/cc-pVDZ")
    a = ref.atoms
    assert a.get_distance(0, 1) == pytest.approx(CCSDT_OH_A, abs=5e-4)
    assert a.get_angle(1, 0, 2) == pytest.approx(CCSDT_HOH_DEG, abs=0.05)
    np.testing.assert_allclose(ref.frequencies_cm, CCSDT_CM, atol=2.0)
    assert [round(c2_character(ref, k)) for k in range(3)] == [1, 1, -1]  # bend, symmetric, antisymmetric
    comp = frequency_comparison(calc, a, "CCSD(T)/cc-pVDZ", reference=ref, device="cpu")
    assert comp.matching == "overlap" and np.all(comp.overlap > 0.95)
    np.testing.assert_array_equal(comp.model_index, [0, 2, 1])  # the model swaps the two stretches
    np.testing.assert_array_equal(comp.flagged, [False, False, True])
    assert -150 < comp.error_cm[2] < -50
