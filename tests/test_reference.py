"""mlipviz.reference against PySCF's own reference values and finite differences."""

import re

import numpy as np
import pytest
from ase import Atoms, units
from conftest import central_differences
from hypothesis import given, settings
from hypothesis import strategies as st

from mlipviz import keys
from mlipviz.reference import (
    Level,
    UntrustedGradientError,
    get_level,
    known_methods,
    label,
    level_energy,
    level_forces,
    mode_variances,
    normal_modes,
    run_pyscf,
    sample_normal_modes,
)


def test_ccsdt_water_matches_pyscf_reference(water_reference):
    # PySCF's test reference for this geometry, CCSD(T)/cc-pVDZ, all electrons correlated.
    result = run_pyscf(water_reference, "CCSD(T)/cc-pVDZ")
    assert abs(result.energy / units.Hartree - (-76.2431689577)) < 1e-7
    assert result.converged
    assert result.t1_diagnostic is not None and 0 < result.t1_diagnostic < 0.02
    # symmetric geometry: no force along x, O force along z only, H forces mirror each other
    np.testing.assert_allclose(result.forces[:, 0], 0, atol=1e-8)
    np.testing.assert_allclose(result.forces[1] * [1, -1, 1], result.forces[2], atol=1e-8)


@pytest.mark.parametrize(
    "level",
    ["HF/cc-pVDZ", "B3LYP/cc-pVDZ", "PBE0/6-31g", "B3LYP-D3BJ/6-31g", "MP2/cc-pVDZ", "CCSD/6-31g", "CCSD(T)/cc-pVDZ"],
)
def test_forces_match_central_differences(water_distorted, level):
    analytic = run_pyscf(water_distorted, level).forces
    numeric = central_differences(lambda a: run_pyscf(a, level, forces=False).energy, water_distorted)
    assert np.abs(analytic - numeric).max() < 1e-3  # eV/Å
    assert np.abs(analytic).max() > 0.1  # the geometry is really off equilibrium


def test_frozen_core_ccsdt_forces_match_central_differences(water_distorted):
    level = get_level("CCSD(T)/cc-pVDZ", frozen_core=True)
    analytic = run_pyscf(water_distorted, level).forces
    numeric = central_differences(lambda a: run_pyscf(a, level, forces=False).energy, water_distorted)
    assert np.abs(analytic - numeric).max() < 1e-3
    # freezing the O 1s changes the energy, by a few mHa for water
    e_all = run_pyscf(water_distorted, "CCSD(T)/cc-pVDZ", forces=False).energy
    e_fc = run_pyscf(water_distorted, level, forces=False).energy
    assert 0.5e-3 < (e_fc - e_all) / units.Hartree < 5e-3


def test_label_keeps_levels_side_by_side_with_provenance(water_distorted):
    import pyscf

    out = label(water_distorted, ["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"])
    assert water_distorted.calc is None and "energy_ccsdt_ccpvdz" not in water_distorted.info
    cc, dft = get_level("CCSD(T)/cc-pVDZ"), get_level("B3LYP/cc-pVDZ")
    e = level_energy([out], cc)[0]
    assert out.get_potential_energy() == pytest.approx(e)  # primary level on the calculator
    assert level_forces([out], dft)[0].shape == (3, 3)
    assert abs(e - level_energy([out], dft)[0]) > 0.1  # different methods, different absolute energies
    for slug in (cc.slug, dft.slug):
        for field in keys.PROVENANCE_FIELDS:
            assert keys.provenance_key(slug, field) in out.info
    assert out.info[keys.provenance_key(cc.slug, keys.PYSCF_VERSION)] == pyscf.__version__
    assert out.info[keys.provenance_key(cc.slug, keys.LEVEL)] == "CCSD(T)/cc-pVDZ"
    assert out.info[keys.provenance_key(cc.slug, keys.CONVERGED)] is True
    assert out.info[keys.provenance_key(cc.slug, keys.WALL_TIME)] > 0
    assert keys.provenance_key(cc.slug, keys.T1_DIAGNOSTIC) in out.info


def test_normal_modes_match_pyscf_harmonic_analysis():
    from ase.build import molecule
    from pyscf.hessian import thermo

    from mlipviz.reference.pyscf_driver import _mean_field, build_mole

    modes = normal_modes(molecule("H2O"), "HF/sto-3g")
    mol = build_mole(modes.atoms, get_level("HF/sto-3g"))
    mf = _mean_field(mol, get_level("HF/sto-3g"))
    mf.kernel()
    ref = thermo.harmonic_analysis(mol, mf.Hessian().kernel())["freq_wavenumber"]
    np.testing.assert_allclose(np.sort(modes.frequencies_cm), np.sort(np.real(ref)), atol=1.0)


@pytest.mark.parametrize("quantum", [True, False])
def test_normal_mode_sampling_reproduces_harmonic_energy(quantum):
    """<½ Δxᵀ H Δx> over samples equals Σ_k ½ ω_k² <q_k²>: kT/2 per mode classically."""
    from ase.build import molecule

    modes = normal_modes(molecule("H2O"), "HF/sto-3g")
    t = 500.0
    images = sample_normal_modes(modes, 4000, t, quantum=quantum, seed=7)
    dx = np.array([(a.positions - modes.atoms.positions).ravel() for a in images])
    e_harm = 0.5 * np.einsum("si,ij,sj->s", dx, modes.hessian, dx)
    expected = 0.5 * np.sum(modes.omega**2 * mode_variances(modes.omega, t, quantum))
    if not quantum:
        assert expected == pytest.approx(3 * units.kB * t / 2)
    assert e_harm.mean() == pytest.approx(expected, rel=0.05)
    assert all(a.info[keys.SAMPLING_TEMPERATURE] == t for a in images[:3])


def test_quantum_variance_limits():
    omega = np.array([0.05, 0.3])
    hot = mode_variances(omega, 1e6, quantum=True)
    np.testing.assert_allclose(hot, mode_variances(omega, 1e6, quantum=False), rtol=1e-3)  # classical limit
    from mlipviz.reference.sampling import HBAR

    np.testing.assert_allclose(mode_variances(omega, 0, quantum=True), HBAR / (2 * omega))  # ground state


# --- bad input ---------------------------------------------------------------------------------


def test_unknown_element_is_named(tmp_path):
    from mlipviz.dataset import load_images

    f = tmp_path / "bad.xyz"
    f.write_text("3\n\nO 0 0 0\nXx 0 0 1\nH 0 1 0\n")
    with pytest.raises(ValueError, match="Unknown element symbol.*'Xx'"):
        load_images(f)
    with pytest.raises(ValueError, match="unknown element"):
        run_pyscf(Atoms("XH", positions=[(0, 0, 0), (0, 0, 1)]), "HF/sto-3g")


def test_overlapping_atoms_are_named():
    atoms = Atoms("OH2", positions=[(0, 0, 0), (0, 0, 0.2), (0, 0.8, 0.6)])
    with pytest.raises(ValueError, match=r"overlapping atoms: O0 and H1 are 0.200 Å apart"):
        run_pyscf(atoms, "HF/sto-3g")


def test_odd_electron_count_with_default_spin():
    oh = Atoms("OH", positions=[(0, 0, 0), (0, 0, 0.97)])
    with pytest.raises(ValueError, match="9 electrons, an odd count.*spin=1"):
        run_pyscf(oh, "HF/sto-3g")
    assert run_pyscf(oh, get_level("HF/sto-3g", spin=1)).converged  # the suggested fix works


def test_unknown_level_name():
    with pytest.raises(ValueError, match="Unknown level of theory 'CCSDT'.*CCSD\\(T\\)"):
        get_level("CCSDT/cc-pVDZ")
    with pytest.raises(ValueError, match="METHOD/basis"):
        get_level("HF/cc-pVDZ/extra")


def test_nan_positions(water_reference):
    bad = water_reference.copy()
    bad.positions[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite positions for atom index\(es\) \[1\]"):
        label(bad, "HF/sto-3g")


def test_unknown_basis_and_missing_element(water_reference):
    with pytest.raises(ValueError, match="Unknown basis set 'cc-pVQQ'"):
        run_pyscf(water_reference, "HF/cc-pVQQ")
    with pytest.raises(ValueError, match="no functions for element.*Xe"):
        run_pyscf(Atoms("Xe"), "HF/cc-pVDZ")


def test_impossible_charge_spin(water_reference):
    with pytest.raises(ValueError, match="parity"):
        run_pyscf(water_reference, get_level("HF/sto-3g", spin=1))
    with pytest.raises(ValueError, match="impossible"):
        run_pyscf(water_reference, get_level("HF/sto-3g", charge=12))


def test_open_shell_ccsdt_forces_refused():
    oh = Atoms("OH", positions=[(0, 0, 0), (0, 0, 0.97)])
    with pytest.raises(UntrustedGradientError, match="issue 3305"):
        run_pyscf(oh, get_level("CCSD(T)/sto-3g", spin=1))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_level_parsing_never_crashes_obscurely(text):
    """Any string either parses into a registered method or raises a ValueError that says why."""
    try:
        level = get_level(text)
    except ValueError as err:
        # the message says what was wrong with the level string, in words a user can act on
        assert re.search(r"Unknown level of theory|Cannot parse level|non-empty|must be a string", str(err)), str(err)
    else:
        assert isinstance(level, Level) and level.method in known_methods()


def test_d3bj_dispersion_decays_as_r_minus_6_between_molecules():
    # The D3(BJ) term is the only difference between B3LYP-D3BJ and B3LYP at the same geometry. Between two
    # waters it must vanish at large separation and fall off as C6/R^6 (plus a small C8/R^8 part), whatever
    # the SCF does: the analytic long-range limit of the correction.
    from ase.collections import s22

    from mlipviz.reference import distance_scan

    dimer = s22["Water_dimer"]
    scan = distance_scan(dimer, [3, 4, 5], [12.0, 15.0, 60.0])
    disp = np.array([run_pyscf(a, "B3LYP-D3BJ/sto-3g", forces=False).energy
                     - run_pyscf(a, "B3LYP/sto-3g", forces=False).energy for a in scan])
    inter = disp[:2] - disp[2]  # intermolecular part; intramolecular D3 terms cancel
    assert np.all(inter < 0)  # dispersion binds
    ratio = inter[0] / inter[1]
    assert abs(ratio / (15.0 / 12.0) ** 6 - 1) < 0.1


def test_dispersion_forces_are_included(water_distorted):
    plain = run_pyscf(water_distorted, "B3LYP/6-31g").forces
    d3 = run_pyscf(water_distorted, "B3LYP-D3BJ/6-31g").forces
    assert np.abs(d3 - plain).max() > 1e-5  # eV/Å: the D3 gradient is there (checked against FD above)
