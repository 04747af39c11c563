"""Campaign planning: duplicate tasks merged before any work, periodic structures refused."""

import json

import numpy as np
import pytest

from mlipviz.geometry import geometry_key
from mlipviz.reference import run_pyscf
from mlipviz.reference.campaign import run_campaign
from mlipviz.reference.campaign.plan import GEOMETRY_TOLERANCE, merge_geometries, plan_tasks
from mlipviz.reference.levels import get_levels
from mlipviz.reference.store import RecordStore, task_key

from conftest import rattled_waters  # tests/ is on sys.path under pytest

CHEAP = "HF/sto-3g"


def _water_on_a_rounding_boundary():
    """A water whose O x coordinate sits 2e-9 Å below a 1e-8 Å rounding boundary of the geometry key."""
    atoms = rattled_waters(1, seed=5)[0]
    atoms.positions[0, 0] = 0.123456783
    return atoms


def _shifted(atoms, atom, axis, delta):
    out = atoms.copy()
    out.positions[atom, axis] += delta
    return out


def test_identical_and_near_identical_geometries_are_computed_and_stored_once(tmp_path, client):
    a = _water_on_a_rounding_boundary()
    across = _shifted(a, 0, 0, 4e-9)  # 0.123456787: rounds to the neighbouring key
    below = _shifted(a, 2, 1, -4e-9)
    assert geometry_key(across) != geometry_key(a)  # plain key equality would miss this one
    other = rattled_waters(1, seed=6)[0]
    images = [a, a.copy(), a.copy(), across, below, other]
    path = tmp_path / "s.jsonl"
    report = run_campaign(images, CHEAP, path, client=client, fd_check_first=False, progress=False)
    assert (report.n_ok, report.n_duplicates, report.n_tasks, report.n_skipped) == (2, 4, 2, 0)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    stored = {json.loads(line)["key"] for line in lines}
    assert stored == {task_key(a, CHEAP), task_key(other, CHEAP)}
    rec = RecordStore(path, mode="r").get(task_key(a, CHEAP))
    np.testing.assert_array_equal(rec["positions"], a.positions)  # the first geometry's positions are used
    assert rec["energy"] == pytest.approx(run_pyscf(a, CHEAP, forces=False).energy, abs=1e-6)
    again = run_campaign(images[::-1], CHEAP, path, client=client, progress=False)
    assert (again.n_ok, again.n_skipped, again.n_duplicates) == (0, 2, 4)
    assert len(path.read_text().splitlines()) == 2


def test_duplicates_are_merged_per_task_across_levels(tmp_path, client):
    a, b = rattled_waters(2, seed=7)
    path = tmp_path / "s.jsonl"
    report = run_campaign([a, b, a.copy()], [CHEAP, "B3LYP/sto-3g"], path, client=client,
                          fd_check_first=False, progress=False)
    assert (report.n_ok, report.n_duplicates, report.n_tasks) == (4, 2, 4)
    store = RecordStore(path, mode="r")
    assert len(store.records) == len(store) == 4
    exported = store.to_images()
    assert len(exported) == 2 and all(len([k for k in x.info if k.startswith("energy_")]) == 2 for x in exported)


def test_a_level_given_twice_is_one_task():
    a, b = rattled_waters(2, seed=8)
    plan = plan_tasks([a, b], get_levels([CHEAP, "B3LYP/sto-3g", CHEAP]), forces=True)
    assert plan.n_requested == 6 and plan.n_duplicates == 2
    assert [(t.index, t.level.name) for t in plan.tasks] == [(0, "HF/sto-3g"), (0, "B3LYP/sto-3g"),
                                                            (1, "HF/sto-3g"), (1, "B3LYP/sto-3g")]
    assert [t.key for t in plan.tasks][0] == task_key(a, CHEAP)


def test_spellings_of_one_basis_are_one_task():
    plan = plan_tasks(rattled_waters(1), get_levels(["HF/STO-3G", "hf/sto-3g", "HF/sto3g"]), forces=True)
    assert len(plan.tasks) == 1 and plan.n_duplicates == 2


def test_merge_geometries_matches_a_pairwise_comparison():
    rng = np.random.default_rng(3)
    base = rattled_waters(40, seed=2)
    images = []
    for _ in range(200):
        atoms = base[rng.integers(len(base))].copy()
        kind = rng.integers(3)
        if kind == 1:  # a near copy, within the tolerance
            atoms.positions += rng.uniform(-0.4, 0.4, atoms.positions.shape) * GEOMETRY_TOLERANCE
        elif kind == 2:  # a distinct geometry just beyond it
            atoms.positions[rng.integers(3), rng.integers(3)] += 3 * GEOMETRY_TOLERANCE
        images.append(atoms)
    pairwise = []
    for i, atoms in enumerate(images):
        same = [j for j in range(i) if pairwise[j] == j
                and np.array_equal(images[j].numbers, atoms.numbers)
                and np.max(np.abs(images[j].positions - atoms.positions)) < GEOMETRY_TOLERANCE]
        pairwise.append(same[0] if same else i)
    assert merge_geometries(images) == pairwise
    assert len(set(pairwise)) < 120  # the sample does hold many copies


def test_merge_geometries_keeps_different_elements_and_atom_orders_apart():
    water = rattled_waters(1)[0]
    reordered = water[[1, 0, 2]]
    reordered.positions = water.positions  # same positions, different element order
    apart = water.copy()
    apart.positions[1, 2] += 2 * GEOMETRY_TOLERANCE
    assert merge_geometries([water, reordered, apart, water.copy()]) == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="tolerance must be a positive number of Å, got -1"):
        merge_geometries([water], tolerance=-1)


def test_a_periodic_structure_is_refused_before_any_work(tmp_path, client):
    images = rattled_waters(3)
    images[1].cell = [10.0, 10.0, 10.0]
    images[1].pbc = [False, False, True]
    path = tmp_path / "s.jsonl"
    with pytest.raises(ValueError, match=r"geometry 1 is periodic along z"):
        run_campaign(images, CHEAP, path, client=client, progress=False)
    assert not path.exists()


def test_a_read_only_store_is_refused_before_any_work(tmp_path, client):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"s\.jsonl was opened read only"):
        run_campaign(rattled_waters(1), CHEAP, RecordStore(path, mode="r"), client=client, progress=False)
    assert path.read_bytes() == b""


def test_a_damaged_store_stops_the_campaign_before_any_work(tmp_path, client):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"{}\n")
    with pytest.raises(ValueError, match=r"line 1 is not a record: no 'key' and no 'status'.*RecordStore\.repair"):
        run_campaign(rattled_waters(1), CHEAP, path, client=client, progress=False)
    assert path.read_bytes() == b"{}\n"
