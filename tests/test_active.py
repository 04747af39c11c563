"""Active learning: selection against brute force, no repeats, seeds, resume after an interruption, budget, refusals.

Tiny ensembles (PaiNN 8 features, 1 interaction, 2 members, 2 epochs) on the embedded water set: 6 initial
structures, a pool of 30 (each given twice, plus one initial structure), 5 labels per round.
"""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from ase import Atoms

from mlipviz import keys
from mlipviz.active import (ActiveLearningRun, active_learning, campaign_labeller, distinct_candidates, md_candidates,
                            pool_labeller, round_rng, select, uncertainty_scores)
from mlipviz.geometry import geometry_key
from mlipviz.potential import ModelConfig, load_ensemble
from mlipviz.reference.levels import get_level
from mlipviz.structure_io import load_images, write_images

LEVEL = "CCSD(T)/cc-pVDZ"
SLUG = get_level(LEVEL).slug
CONFIG = ModelConfig(n_atom_basis=8, n_interactions=1)
TRAIN = {"max_epochs": 2, "device": "cpu", "batch_size": 8}


@pytest.fixture(scope="module")
def sets(embedded_water):
    initial = embedded_water[:6]
    distinct = embedded_water[6:36]
    pool = list(distinct) + [a.copy() for a in distinct] + [initial[0].copy()]  # repeats and a labelled one
    test = embedded_water[36:46]
    return SimpleNamespace(initial=initial, distinct=distinct, pool=pool, test=test, labelled=embedded_water)


class Counting:
    """A pool labeller that records what it was asked, and can fail on a given call."""

    def __init__(self, labelled, fail_on_call=None):
        self.inner = pool_labeller(labelled, LEVEL)
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def __call__(self, images):
        self.calls.append([geometry_key(a) for a in images])
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("labelling interrupted")
        return self.inner(images)


def run_al(sets, directory, labeller, candidates=None, **kw):
    args = dict(level=LEVEL, n_members=2, per_round=5, label_budget=16, test=sets.test, config=CONFIG,
                train_kwargs=TRAIN, progress=False)
    args.update(kw)
    return active_learning(sets.initial, sets.pool if candidates is None else candidates, labeller, directory,
                           **args)


@pytest.fixture(scope="module")
def resumed(sets, tmp_path_factory):
    """A run interrupted inside the labeller in its second labelling round, a copy of it as it was, then resumed."""
    root = tmp_path_factory.mktemp("al")
    directory = root / "run"
    failing = Counting(sets.labelled, fail_on_call=2)
    with pytest.raises(RuntimeError, match="labelling interrupted"):
        run_al(sets, directory, failing)
    crashed = json.loads((directory / "state.json").read_text())
    crashed_labelled = load_images(directory / "labelled.extxyz")
    shutil.copytree(directory, root / "crashed")
    mtimes = {p: p.stat().st_mtime_ns for p in directory.glob("round_00[01]/ensemble/ensemble.json")}
    again = Counting(sets.labelled)
    run = run_al(sets, directory, again)
    return SimpleNamespace(run=run, directory=directory, failing=failing, again=again, crashed=crashed,
                           crashed_labelled=crashed_labelled, mtimes=mtimes, crashed_dir=root / "crashed")


def brute_force_top(ensemble, images, k):
    """Indices of the k structures with the largest per-atom force uncertainty, from the members' raw forces."""
    pred = ensemble.predict(images, device="cpu", progress=False)
    scale = ensemble.calibration["forces"]
    score = []
    for member_forces in pred.member_forces:  # (K, n_atoms, 3)
        std = scale * np.std(member_forces, axis=0, ddof=1)
        score.append(np.sqrt((std**2).mean(axis=1)).max())
    return list(np.argsort(-np.array(score))[:k])


def test_selection_is_the_highest_uncertainty(resumed, sets):
    state = json.loads((resumed.directory / "state.json").read_text())
    taken: set[int] = set()
    for rec in state["rounds"][:2]:
        ensemble = load_ensemble(resumed.directory / f"round_{rec['round']:03d}" / "ensemble", device="cpu")
        avail = [i for i in range(30) if i not in taken]  # the first copy of each pool geometry, not yet labelled
        expected = [avail[j] for j in brute_force_top(ensemble, [sets.pool[i] for i in avail], 5)]
        assert rec["selected_indices"] == expected
        assert rec["pool_size"] == len(avail)
        taken.update(expected)


def test_no_structure_is_selected_or_labelled_twice(resumed, sets):
    state = json.loads((resumed.directory / "state.json").read_text())
    selected = [k for rec in state["rounds"] for k in rec["selected_keys"]]
    assert len(selected) == 10 and len(set(selected)) == 10
    assert not set(selected) & {geometry_key(a) for a in sets.initial}
    labelled = load_images(resumed.directory / "labelled.extxyz")
    assert len({geometry_key(a) for a in labelled}) == len(labelled) == 16
    asked = [k for call in resumed.failing.calls[:1] + resumed.again.calls for k in call]
    assert sorted(asked) == sorted(selected)  # each selected structure labelled exactly once, over both runs


def test_resume_keeps_round_one_labels_and_continues(resumed, sets):
    crashed = resumed.crashed
    assert [r["phase"] for r in crashed["rounds"]] == ["labelled", "selected"]
    assert len(resumed.crashed_labelled) == 11
    assert len(resumed.again.calls) == 1 and resumed.again.calls[0] == crashed["rounds"][1]["selected_keys"]
    labelled = load_images(resumed.directory / "labelled.extxyz")
    for before, after in zip(resumed.crashed_labelled, labelled):
        assert geometry_key(before) == geometry_key(after)
        assert before.info[keys.energy_key(SLUG)] == after.info[keys.energy_key(SLUG)]
    for path, mtime in resumed.mtimes.items():  # neither finished ensemble was trained again
        assert path.stat().st_mtime_ns == mtime
    reference = {geometry_key(a): a for a in sets.labelled}
    for a in labelled:  # the labels are the pool's own
        np.testing.assert_array_equal(a.arrays[keys.forces_key(SLUG)], reference[geometry_key(a)].arrays[
            keys.forces_key(SLUG)])


def test_budget_stop_and_learning_curve(resumed, sets):
    run = resumed.run
    assert "budget" in run.stop_reason
    assert list(run.n_labels) == [6, 11, 16]
    assert [r.phase for r in run.rounds] == ["labelled", "labelled", "final"]
    # the last test MAE, recomputed from the members' raw outputs
    ensemble = run.ensemble(device="cpu")
    pred = ensemble.predict(sets.test, device="cpu", progress=False)
    f_err = np.concatenate([f.mean(axis=0) - a.arrays[keys.forces_key(SLUG)] for f, a in
                            zip(pred.member_forces, sets.test)])
    e_err = pred.member_energy.mean(axis=0) - np.array([a.info[keys.energy_key(SLUG)] for a in sets.test])
    assert run.rounds[-1].test_forces_mae_meV_per_A == pytest.approx(1e3 * np.abs(f_err).mean(), rel=1e-9)
    assert run.rounds[-1].test_energy_mae_meV == pytest.approx(1e3 * np.abs(e_err).mean(), rel=1e-9)
    fig = run.plot()
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 1
    assert ActiveLearningRun.load(resumed.directory).stop_reason == run.stop_reason


def test_rerunning_a_finished_run_does_nothing(resumed, sets):
    never = Counting(sets.labelled, fail_on_call=1)
    run = run_al(sets, resumed.directory, never)
    assert never.calls == [] and list(run.n_labels) == [6, 11, 16]


def test_a_finished_run_goes_on_with_a_larger_budget(resumed, sets, tmp_path):
    """Budget and target are stopping rules, not identity: a larger budget continues the run where it stopped."""
    directory = tmp_path / "run"
    shutil.copytree(resumed.directory, directory)
    last = directory / "round_002" / "ensemble" / "ensemble.json"
    mtime = last.stat().st_mtime_ns
    more = Counting(sets.labelled)
    run = run_al(sets, directory, more, label_budget=21)
    assert list(run.n_labels) == [6, 11, 16, 21] and "budget of 21" in run.stop_reason
    assert [r.phase for r in run.rounds] == ["labelled"] * 3 + ["final"]
    assert last.stat().st_mtime_ns == mtime  # round 2's ensemble chose the new labels; it was not retrained
    state = json.loads((directory / "state.json").read_text())
    ensemble = load_ensemble(directory / "round_002" / "ensemble", device="cpu")
    taken = {k for rec in state["rounds"][:2] for k in rec["selected_keys"]}
    avail = [i for i in range(30) if geometry_key(sets.pool[i]) not in taken]
    expected = [avail[j] for j in brute_force_top(ensemble, [sets.pool[i] for i in avail], 5)]
    assert state["rounds"][2]["selected_indices"] == expected
    assert len(more.calls) == 1 and more.calls[0] == state["rounds"][2]["selected_keys"]
    assert state["arguments"]["label_budget"] == 21
    with pytest.raises(ValueError, match="per_round differs"):  # the rest of the identity still holds
        run_al(sets, directory, Counting(sets.labelled), label_budget=26, per_round=4)


def test_a_run_stopped_by_its_labeller_stays_stopped(sets, tmp_path):
    run_al(sets, tmp_path / "none", lambda images: [None] * len(images), label_budget=11)
    never = Counting(sets.labelled, fail_on_call=1)
    run = run_al(sets, tmp_path / "none", never, label_budget=21)
    assert "labelled none" in run.stop_reason and never.calls == []


def test_labels_written_before_an_interruption_are_recovered(resumed, sets):
    """A crash after labelled.extxyz was written but before state.json: the labels are kept, not asked again."""
    directory = resumed.crashed_dir
    state = json.loads((directory / "state.json").read_text())
    chosen = load_images(directory / "round_001" / "selected.extxyz")
    labels = pool_labeller(sets.labelled, LEVEL)(chosen)
    write_images(directory / "labelled.extxyz", load_images(directory / "labelled.extxyz") + labels)
    never = Counting(sets.labelled, fail_on_call=1)
    run = run_al(sets, directory, never)
    assert never.calls == []
    assert list(run.n_labels) == [6, 11, 16]
    assert json.loads((directory / "state.json").read_text())["labelled_keys"][11:] == \
        state["rounds"][1]["selected_keys"]


def test_failed_labels_are_recorded_and_never_selected_again(sets, tmp_path):
    inner = pool_labeller(sets.labelled, LEVEL)
    failed = []

    def first_fails(images):
        out = inner(images)
        if not failed:
            failed.append(geometry_key(images[0]))
            out[0] = None
        return out

    run = run_al(sets, tmp_path / "partial", first_fails, label_budget=11)
    state = json.loads((tmp_path / "partial" / "state.json").read_text())
    assert state["failed_keys"] == failed and run.rounds[0].n_failed == 1
    assert list(run.n_labels) == [6, 10, 11]
    assert failed[0] not in state["rounds"][1]["selected_keys"] + state["labelled_keys"]

    run = run_al(sets, tmp_path / "none", lambda images: [None] * len(images), label_budget=16)
    assert "labelled none" in run.stop_reason and list(run.n_labels) == [6]


def test_changed_arguments_are_refused_naming_the_field(resumed, sets):
    with pytest.raises(ValueError, match="per_round differs"):
        run_al(sets, resumed.directory, Counting(sets.labelled), per_round=4)
    with pytest.raises(ValueError, match="candidates differs"):
        run_al(sets, resumed.directory, Counting(sets.labelled), candidates=sets.pool[:40])
    with pytest.raises(ValueError, match="strategy differs"):
        run_al(sets, resumed.directory, Counting(sets.labelled), strategy="random")


def test_random_selection_is_seed_reproducible(sets, tmp_path):
    picks, maes = [], []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        run = run_al(sets, tmp_path / name, Counting(sets.labelled), strategy="random", seed=seed, label_budget=11)
        state = json.loads((tmp_path / name / "state.json").read_text())
        picks.append(state["rounds"][0]["selected_indices"])
        maes.append(run.test_forces_mae.tolist())
    assert picks[0] == picks[1] != picks[2]
    assert maes[0] == maes[1]  # the same seed trains the same ensembles, whatever ran before in the process
    # the draw is NumPy's, from the round's generator, over the 30 distinct unlabelled candidates
    expected = sorted(np.random.default_rng([3, 0]).choice(30, size=5, replace=False).tolist())
    assert picks[0] == expected


def test_md_candidates_drive_the_loop(sets, tmp_path):
    from mlipviz.reference import label_many

    make = md_candidates([sets.initial[1], sets.initial[2]], n_samples=4, temperature_K=100.0, interval_steps=2,
                         equilibration_steps=2, seed=1, device="cpu")
    asked = []

    def labeller(images):  # MD snapshots are new geometries: label them at the level itself
        asked.append(len(images))
        return label_many(images, LEVEL, progress=False)

    directory = tmp_path / "md"
    run = run_al(sets, directory, labeller, candidates=make, label_budget=9, per_round=3)
    assert asked == [3] and list(run.n_labels) == [6, 9]
    ensemble = run.ensemble(0, device="cpu")
    frames = make(ensemble, 0)  # the same seeds and the same ensemble: the same snapshots
    assert len(frames) == 8 and all(f.info[keys.SAMPLER] == keys.SAMPLER_MD for f in frames)
    state = json.loads((directory / "state.json").read_text())
    top = [geometry_key(frames[i]) for i in brute_force_top(ensemble, frames, 3)]
    assert state["rounds"][0]["selected_keys"] == top
    assert state["arguments"]["candidates"]["starts"] == [geometry_key(sets.initial[1]), geometry_key(sets.initial[2])]


def test_campaign_labeller_matches_a_direct_calculation(tmp_path, client, sets):
    from mlipviz.reference import label

    cheap = "HF/sto-3g"
    slug = get_level(cheap).slug
    images = [Atoms(a.numbers, a.positions) for a in sets.distinct[:2]]
    labeller = campaign_labeller(cheap, tmp_path / "s.jsonl", client=client, progress=False, fd_check_first=False)
    out = labeller(images)
    for a, b in zip(out, images):
        ref = label(b, cheap)
        assert a.info[keys.energy_key(slug)] == pytest.approx(ref.info[keys.energy_key(slug)], abs=1e-7)
        np.testing.assert_allclose(a.arrays[keys.forces_key(slug)], ref.arrays[keys.forces_key(slug)], atol=1e-6)
        np.testing.assert_array_equal(a.positions, b.positions)
    n_lines = len((tmp_path / "s.jsonl").read_text().splitlines())
    labeller(images)  # already in the store: nothing is computed again
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == n_lines == 2


def test_scores_and_selection_rules_by_hand():
    pred = SimpleNamespace(energy_std=np.array([0.3, 0.6, 0.2]),
                           atom_uncertainty=[np.array([0.1, 0.5, 0.2]), np.array([0.4, 0.4]), np.array([0.9])])
    np.testing.assert_allclose(uncertainty_scores(pred, "forces"), [0.5, 0.4, 0.9])
    np.testing.assert_allclose(uncertainty_scores(pred, "energy"), [0.1, 0.3, 0.2])
    assert select([0.2, 0.7, 0.7, 0.1], 2).tolist() == [1, 2]  # ties go to the earlier candidate
    a = select(10, 4, "random", round_rng(5, 2))
    assert a.tolist() == select(10, 4, "random", round_rng(5, 2)).tolist() and len(set(a.tolist())) == 4
    with pytest.raises(ValueError, match="k=4 exceeds the 3 candidates"):
        select([1.0, 2.0, 3.0], 4)
    with pytest.raises(ValueError, match="needs rng"):
        select(3, 1, "random")
    with pytest.raises(ValueError, match="score must be one of"):
        uncertainty_scores(pred, "virial")
    w = Atoms("OH2", positions=[(0, 0, 0), (0, 0.76, 0.59), (0, -0.76, 0.59)])
    assert distinct_candidates([w, w.copy(), Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.74)])],
                               exclude={geometry_key(w)}) == [2]


def test_bad_input_is_refused_before_training(sets, tmp_path):
    lab = Counting(sets.labelled, fail_on_call=1)
    bare = [Atoms(a.numbers, a.positions) for a in sets.initial]
    cases = [
        (dict(initial=[]), "initial must be a non-empty list"),
        (dict(initial=bare), r"initial\[0\] has no CCSD\(T\)/cc-pVDZ energy and forces"),
        (dict(per_round=0), "per_round must be a positive integer"),
        (dict(label_budget=5), "label_budget=5 is below the 6 initial structures"),
        (dict(candidates=sets.pool[:5] + [Atoms("CH4", positions=np.eye(5, 3) * 1.1)]),
         r"candidates\[5\] contains C, which the initial structures lack"),
        (dict(test=sets.test + [sets.pool[0]]), r"test\[10\] is candidates\[0\]"),
        (dict(n_members=1), "n_members must be at least 2"),
        (dict(strategy="greedy"), "strategy must be one of"),
        (dict(target_forces_mae=10.0, test=None), "needs a test set"),
        (dict(train_kwargs={"split": None}), "train_kwargs may not set"),
    ]
    for kw, message in cases:
        initial = kw.pop("initial", sets.initial)
        args = dict(level=LEVEL, n_members=2, per_round=5, label_budget=16, test=sets.test, config=CONFIG,
                    train_kwargs=TRAIN, progress=False)
        args.update(kw)
        candidates = args.pop("candidates", sets.pool)
        with pytest.raises(ValueError, match=message):
            active_learning(initial, candidates, lab, tmp_path / "bad", **args)
    assert lab.calls == [] and not (tmp_path / "bad").exists()
