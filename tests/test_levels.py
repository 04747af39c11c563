"""Levels of theory: canonical fields and keys, checks of a structure against a level before any SCF, the two
B3LYP forms, user-registered DFT levels and DFT provenance (xc string, integration grid)."""

import json
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.io import read
from conftest import central_differences
from hypothesis import given, settings
from hypothesis import strategies as st

from mlipviz import keys
from mlipviz.reference import PySCFCalculator, label, label_many, run_pyscf
from mlipviz.reference.functionals import register_dft_level
from mlipviz.reference.levels import METHODS, Level, canonical_basis, check_basis, get_level, get_levels
from mlipviz.reference.pyscf_driver import build_mole, check_xc_definition
from mlipviz.reference.store import task_key
from mlipviz.reference.validate import check_level, orbital_count

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def no_scf(monkeypatch):
    """Any SCF started while this fixture is active fails the test: checks must refuse bad input before."""
    from pyscf.scf import hf

    def refuse(*args, **kwargs):
        raise AssertionError("an SCF was started")

    monkeypatch.setattr(hf.SCF, "kernel", refuse)
    monkeypatch.setattr(hf.SCF, "scf", refuse)


@pytest.fixture
def registry():
    """Names registered during a test are removed afterwards."""
    before = set(METHODS)
    yield
    for key in set(METHODS) - before:
        del METHODS[key]


def _direct_rks_energy(atoms, xc, basis="sto-3g"):
    """Total energy (Ha) of a closed-shell RKS run written directly against PySCF, default grid."""
    from pyscf import dft, gto

    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
                basis=basis, unit="Angstrom", verbose=0)
    mf = dft.RKS(mol)
    mf.xc = xc
    mf.conv_tol = 1e-10
    return mf.kernel(), mf


# --- defects 1 and 2: canonical field types -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", 1, 0, None, 1.0])
def test_frozen_core_must_be_a_bool(value):
    with pytest.raises(ValueError, match="frozen_core must be True or False"):
        Level("CCSD(T)", frozen_core=value)


def test_numpy_bool_frozen_core_is_stored_as_bool(water_reference):
    level = Level("CCSD(T)", frozen_core=np.bool_(True))
    assert level.frozen_core is True
    assert level == Level("CCSD(T)", frozen_core=True)
    assert task_key(water_reference, level) == task_key(water_reference, Level("CCSD(T)", frozen_core=True))


@pytest.mark.parametrize("np_int", [np.int64, np.int32, np.int8, np.uint16])
def test_numpy_integer_charge_and_spin_are_stored_as_int(np_int, water_reference):
    level = Level("HF", "sto-3g", charge=np_int(1), spin=np_int(1))
    plain = Level("HF", "sto-3g", charge=1, spin=1)
    assert type(level.charge) is int and type(level.spin) is int
    assert level == plain and level.as_dict() == plain.as_dict()
    assert json.dumps(level.as_dict()) == json.dumps(plain.as_dict())
    assert task_key(water_reference, level) == task_key(water_reference, plain)
    assert get_level("HF/sto-3g", charge=np_int(0)) == get_level("HF/sto-3g")


@pytest.mark.parametrize("field", ["charge", "spin"])
@pytest.mark.parametrize("value", [True, np.bool_(False), 1.0, np.float64(2.0), "1"])
def test_charge_and_spin_refuse_bool_float_and_str(field, value):
    with pytest.raises(ValueError, match=f"{field}.* must be an integer, got {type(value).__name__}"):
        Level("HF", **{field: value})


def test_negative_spin_is_refused():
    with pytest.raises(ValueError, match="spin .* must be non-negative"):
        Level("HF", spin=np.int64(-2))


# --- defect 3: the basis must hold the electrons --------------------------------------------------------------


def test_orbital_count_matches_an_analytic_count(water_reference):
    # STO-3G: O 1s 2s 2p = 5 functions, H 1s = 1. cc-pVDZ (spherical): O 3s2p1d = 3 + 6 + 5 = 14, H 2s1p = 5.
    assert orbital_count(water_reference, "sto-3g") == 5 + 2 * 1
    assert orbital_count(water_reference, "cc-pVDZ") == 14 + 2 * 5
    assert orbital_count(water_reference, "sto-3g") == build_mole(water_reference, "HF/sto-3g").nao


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"charge": -100}, r"charge -100 and spin 0 has 110 electrons \(55 α, 55 β\).*only 7 orbitals"),
        ({"spin": 8}, r"charge \+0 and spin 8 has 10 electrons \(9 α, 1 β\).*only 7 orbitals"),
    ],
)
def test_more_electrons_than_orbitals_is_refused_before_any_scf(water_reference, no_scf, overrides, message):
    level = get_level("HF/sto-3g", **overrides)
    with pytest.raises(ValueError, match=message):
        check_level(water_reference, level)
    with pytest.raises(ValueError, match=message):
        run_pyscf(water_reference, level)
    with pytest.raises(ValueError, match=message):
        label(water_reference, ["PBE/sto-3g", level])  # the first, valid level is not computed either
    with pytest.raises(ValueError, match="geometry 0: .*" + message):
        label_many([water_reference], level, progress=False)


def test_check_level_returns_2s_up_to_a_full_basis(water_reference):
    assert check_level(water_reference, "HF/sto-3g") == 0
    # 10 electrons, 2S = 4: 7 α in the 7 orbitals of STO-3G water, the largest spin that fits
    assert check_level(water_reference, get_level("HF/sto-3g", spin=np.int64(4))) == 4
    with pytest.raises(ValueError, match="parity"):
        check_level(water_reference, get_level("HF/sto-3g", spin=1))


def test_correlated_method_needs_a_virtual_orbital(water_reference, no_scf):
    # charge -4: 14 electrons fill the 7 STO-3G orbitals; HF can run, MP2/CC have nothing to correlate into
    assert check_level(water_reference, get_level("HF/sto-3g", charge=-4)) == 0
    with pytest.raises(ValueError, match="correlates electrons into virtual orbitals.*fill all 7 orbitals"):
        run_pyscf(water_reference, get_level("CCSD/sto-3g", charge=-4))


# --- defect 4: levels that are not levels ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (123, r"levels must be .*a Level, or a list of them; got int 123"),
        (None, r"levels must be .*got NoneType None"),
        (["HF/sto-3g", 5], r"levels\[1\] must be a string .* or a Level, got int 5"),
        ([Level("HF"), None], r"levels\[1\] must be a string .* or a Level, got NoneType"),
        ({"HF/sto-3g": 1}, r"levels must be .*got dict"),
        ([], "levels is empty"),
    ],
)
def test_levels_of_the_wrong_type_are_named(water_reference, no_scf, levels, message):
    with pytest.raises(ValueError, match=message):
        label(water_reference, levels)
    with pytest.raises(ValueError, match=message):
        label_many([water_reference], levels, progress=False)


def test_get_levels_takes_tuples_and_generators():
    assert get_levels(("HF/sto-3g", Level("PBE"))) == [Level("HF", "sto-3g"), Level("PBE")]
    assert get_levels(lv for lv in ["MP2/cc-pVDZ"]) == [Level("MP2")]


def test_one_slug_for_two_charges_is_refused(water_reference, no_scf):
    with pytest.raises(ValueError, match="would share the keys of slug 'hf_sto3g'"):
        label(water_reference, [get_level("HF/sto-3g"), get_level("HF/sto-3g", charge=2)])


# --- defect 5: periodic structures -------------------------------------------------------------------------------


@pytest.mark.parametrize(("pbc", "axes"), [(True, "xyz"), ([False, False, True], "z")])
def test_periodic_structures_are_refused(water_reference, no_scf, pbc, axes):
    boxed = water_reference.copy()
    boxed.cell = [8.0, 8.0, 8.0]
    boxed.pbc = pbc
    with pytest.raises(ValueError, match=f"atoms is periodic along {axes}"):
        label(boxed, "HF/sto-3g")
    with pytest.raises(ValueError, match=f"geometry 1 is periodic along {axes}"):
        label_many([water_reference, boxed], "HF/sto-3g", progress=False)
    with pytest.raises(ValueError, match=f"periodic along {axes}"):
        run_pyscf(boxed, "HF/sto-3g")
    boxed.calc = PySCFCalculator("HF/sto-3g")
    with pytest.raises(ValueError, match=f"periodic along {axes}"):
        boxed.get_potential_energy()


# --- defect 6: one basis, one spelling ----------------------------------------------------------------------------


def test_spellings_of_sto3g_are_one_level_and_one_key(water_reference):
    levels = [get_level(s) for s in ("HF/STO-3G", "hf/sto-3g", "HF/sto3g")]
    assert levels[0] == levels[1] == levels[2]
    assert {lv.name for lv in levels} == {"HF/sto-3g"} and {lv.slug for lv in levels} == {"hf_sto3g"}
    assert len({json.dumps(lv.as_dict(), sort_keys=True) for lv in levels}) == 1
    assert len({task_key(water_reference, lv) for lv in levels}) == 1


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (["STO-3G", "sto_3g", "Sto 3G"], "sto-3g"),
        (["6-31G*", "6-31g*", "631G*", "6-31Gs"], "6-31G*"),
        (["6-311++G**", "6-311++g**", "6311++gss"], "6-311++G**"),
        (["6-31G(d,p)", "6-31g(d,p)"], "6-31G(d,p)"),
        (["cc-pVDZ", "CC-PVDZ", "ccpvdz", "cc_pvdz"], "cc-pVDZ"),
        (["aug-cc-pVTZ", "AUG-cc-pvtz", "augccpvtz"], "aug-cc-pVTZ"),
        (["cc-pCVDZ", "ccpcvdz"], "cc-pCVDZ"),
        (["def2-SVP", "def2svp", "DEF2-svp"], "def2-SVP"),
        (["def2-TZVPP", "def2_tzvpp"], "def2-TZVPP"),
    ],
)
def test_basis_spellings_pyscf_reads_alike_are_one_name(spellings, canonical):
    from pyscf.gto import basis as pyscf_basis

    assert {canonical_basis(s) for s in spellings} == {canonical}
    assert canonical_basis(canonical) == canonical  # a fixed point
    reference = pyscf_basis.load(canonical, "O")
    for spelling in spellings:  # PySCF itself loads the same functions for every spelling
        assert pyscf_basis.load(spelling, "O") == reference


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=20), st.from_regex(r"(aug-)?[cC][cC]-p[cC]?V[DTQ5]Z|[36]-31[1]?\+{0,2}[gG]\*{0,2}",
                                                       fullmatch=True)))
def test_canonical_basis_is_a_fixed_point(name):
    """The canonical spelling of a canonical spelling is itself, and it is one basis for PySCF."""
    from mlipviz.reference.levels import _pyscf_basis_key

    once = canonical_basis(name)
    assert canonical_basis(once) == once
    same_name = once == name.strip() or _pyscf_basis_key(once) == _pyscf_basis_key(name)
    assert same_name or _pyscf_basis_key(once).replace("*", "s") == _pyscf_basis_key(name).replace("*", "s")


def test_basis_normal_form_is_pyscfs():
    from pyscf.gto.basis import _format_basis_name

    from mlipviz.reference.levels import _pyscf_basis_key

    for name in ["STO-3G", "6-311++G(2d,2p)", "cc-pV5Z", "def2_SVP", "aug cc-pVQZ", "ANO-RCC", "Weird_Name-1"]:
        assert _pyscf_basis_key(name) == _format_basis_name(name)


def test_different_bases_keep_different_slugs():
    slugs = [get_level(f"HF/{b}").slug for b in ("6-31G", "6-31G*", "6-31G**", "6-31+G*", "6-31++G*")]
    assert len(set(slugs)) == len(slugs)


def test_stored_level_names_and_slugs_are_unchanged():
    stored = set()
    for path in sorted(DATA.glob("**/*.extxyz")):
        info = read(path, index=0).info
        stored |= {(k[: -len("_level")], v) for k, v in info.items() if k.endswith("_level")}
    assert {"CCSD(T)/cc-pVDZ", "CCSD(T)/cc-pVTZ", "B3LYP/cc-pVDZ"} <= {name for _, name in stored}
    for slug, name in stored:
        assert get_level(name).name == name and get_level(name).slug == slug


def test_unknown_basis_is_still_named(water_reference):
    assert canonical_basis("cc-pVQQ") == "cc-pVQQ"
    with pytest.raises(ValueError, match="Unknown basis set 'cc-pVQQ'"):
        run_pyscf(water_reference, "HF/cc-pVQQ")
    with pytest.raises(ValueError, match="Unknown basis set '4-31G\\*'"):
        check_basis(get_level("HF/4-31g*").basis, ["O", "H"])


# --- defect 7: the two B3LYPs, registered DFT levels, DFT provenance ---------------------------------------------

#: B3LYP written out in libxc's own component names (Stephens et al. 1994): VWN with the RPA fit or VWN5.
B3LYP_RPA = ".2*HF + .08*LDA_X + .72*GGA_X_B88, .81*GGA_C_LYP + .19*LDA_C_VWN_RPA"
B3LYP_VWN5 = ".2*HF + .08*LDA_X + .72*GGA_X_B88, .81*GGA_C_LYP + .19*LDA_C_VWN"


def test_b3lyp_forms_match_their_libxc_definitions(rng):
    from pyscf.dft import libxc

    rho_a = np.zeros((4, 300))
    rho_a[0] = 10 ** rng.uniform(-3, 1, 300)
    rho_a[1:] = rng.normal(size=(3, 300)) * rho_a[0] * 0.5
    rho_b = rho_a * rng.uniform(0.1, 1.0, 300)

    def exc(xc, spin):
        return libxc.eval_xc(xc, rho_a if spin == 0 else (rho_a, rho_b), spin=spin, deriv=0)[0]

    for spin in (0, 1):
        for name, explicit in (("B3LYP", B3LYP_RPA), ("B3LYP-VWN-RPA", B3LYP_RPA), ("B3LYP-VWN5", B3LYP_VWN5)):
            xc = METHODS[name].xc
            np.testing.assert_allclose(exc(xc, spin), exc(explicit, spin), rtol=0, atol=1e-13)
            assert libxc.hybrid_coeff(xc) == pytest.approx(0.2)
        assert np.abs(exc(B3LYP_RPA, spin) - exc(B3LYP_VWN5, spin)).max() > 1e-3


def test_b3lyp_forms_label_water_like_direct_pyscf(water_distorted):
    out = label(water_distorted, ["B3LYP-VWN-RPA/sto-3g", "B3LYP-VWN5/sto-3g", "B3LYP/sto-3g"], forces=False)
    energy = {name: out.info[keys.energy_key(get_level(f"{name}/sto-3g").slug)] / units.Hartree
              for name in ("B3LYP-VWN-RPA", "B3LYP-VWN5", "B3LYP")}
    direct_rpa, mf = _direct_rks_energy(water_distorted, B3LYP_RPA)
    direct_vwn5, _ = _direct_rks_energy(water_distorted, B3LYP_VWN5)
    assert energy["B3LYP-VWN-RPA"] == pytest.approx(direct_rpa, abs=1e-8)
    assert energy["B3LYP-VWN5"] == pytest.approx(direct_vwn5, abs=1e-8)
    assert energy["B3LYP"] == pytest.approx(direct_rpa, abs=1e-8)  # plain B3LYP is the VWN-RPA form
    assert abs(energy["B3LYP-VWN5"] - energy["B3LYP-VWN-RPA"]) > 1e-2  # Ha: the forms really differ
    for name, xc in (("B3LYP-VWN-RPA", "b3lypg"), ("B3LYP-VWN5", "b3lyp5"), ("B3LYP", "b3lyp")):
        assert out.info[keys.provenance_key(get_level(f"{name}/sto-3g").slug, keys.XC)] == xc
    grid = out.info[keys.provenance_key("b3lyp_sto3g", keys.DFT_GRID)]
    assert f"level={mf.grids.level} " in grid and "prune=nwchem_prune" in grid
    # the radial x angular points per element, counted on PySCF's unpruned atomic grids
    from pyscf.dft import gen_grid

    tab = gen_grid.gen_atomic_grids(mf.mol, level=mf.grids.level, radi_method=mf.grids.radi_method, prune=None)
    for symbol in ("O", "H"):
        n_rad, n_ang = next(w for w in grid.split() if w.startswith(f"{symbol}="))[2:].split("x")
        assert int(n_rad) * int(n_ang) == len(tab[symbol][1])


@pytest.mark.slow
def test_b3lyp_vwn5_forces_match_central_differences(water_distorted):
    level = "B3LYP-VWN5/sto-3g"
    analytic = run_pyscf(water_distorted, level).forces
    numeric = central_differences(lambda a: run_pyscf(a, level, forces=False).energy, water_distorted)
    assert np.abs(analytic - numeric).max() < 1e-3  # eV/Å
    assert np.abs(analytic).max() > 0.1


def test_plain_b3lyp_is_refused_when_pyscf_reads_it_as_vwn5(monkeypatch, water_reference, no_scf):
    from pyscf.dft import libxc

    monkeypatch.setitem(libxc.XC_CODES, "B3LYP", "B3LYP5")  # what B3LYP_WITH_VWN5 = True in pyscf_conf.py does
    with pytest.raises(ValueError, match="B3LYP_WITH_VWN5.*'B3LYP-VWN5' or 'B3LYP-VWN-RPA'"):
        run_pyscf(water_reference, "B3LYP/sto-3g")
    for name in ("B3LYP-VWN5", "B3LYP-VWN-RPA", "PBE0"):
        check_xc_definition(get_level(name))  # explicit forms do not depend on the setting


def test_registered_dft_level_labels_like_direct_pyscf(water_distorted, registry):
    spec = register_dft_level("BLYP-custom", xc="blyp")
    assert register_dft_level("BLYP-custom", xc="blyp") is spec  # registering again is harmless
    level = get_level("blyp-CUSTOM/sto3g")
    assert (level.name, level.slug) == ("BLYP-custom/sto-3g", "blypcustom_sto3g")
    out = label(water_distorted, level)
    e_direct, mf = _direct_rks_energy(water_distorted, "blyp")
    assert out.info[keys.energy_key(level.slug)] / units.Hartree == pytest.approx(e_direct, abs=1e-8)
    grad = mf.nuc_grad_method()
    grad.grid_response = True
    np.testing.assert_allclose(out.arrays[keys.forces_key(level.slug)],
                               -grad.kernel() * units.Hartree / units.Bohr, atol=1e-6)
    assert out.info[keys.provenance_key(level.slug, keys.XC)] == "blyp"


@pytest.mark.parametrize(
    ("name", "xc", "disp", "message"),
    [
        ("Bogus-DFT", "notafunctional", None, "xc 'notafunctional' is not an exchange-correlation functional"),
        ("Bogus-DFT", "b3lyp,notacorrelation", None, "PySCF/libxc can parse"),
        ("Bogus-DFT", "", None, "xc must be a non-empty"),
        ("Bogus-DFT", "blyp", "d9", "cannot set up dispersion 'd9'"),
        ("Bogus-DFT", "b3lyp-d3bj", "d3bj", "already asks for dispersion"),
        ("b3lyp", "blyp", None, "built-in level of theory"),
        ("B3LYP-VWN5", "b3lyp5", None, "built-in level of theory"),
        ("B3-LYP", "blyp", None, "key slug 'b3lyp'"),
        ("my/level", "blyp", None, "no '/' or spaces"),
        ("my level", "blyp", None, "no '/' or spaces"),
    ],
)
def test_bad_registrations_are_refused_before_any_scf(registry, no_scf, name, xc, disp, message):
    before = dict(METHODS)
    with pytest.raises(ValueError, match=message):
        register_dft_level(name, xc=xc, disp=disp)
    assert METHODS == before


def test_a_registered_name_keeps_its_functional(registry):
    register_dft_level("My-Hybrid", xc="pbe0")
    with pytest.raises(ValueError, match="already registered with xc='pbe0'"):
        register_dft_level("my-hybrid", xc="b3lyp")
    assert get_level("My-Hybrid/sto-3g").spec.xc == "pbe0"
