"""mlipviz.widgets: the dataset explorer (scatter click -> 3D view + table) and the live training monitor."""

import matplotlib

matplotlib.use("Agg")

import io  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from ase.calculators.calculator import Calculator, all_changes  # noqa: E402
from ase.io import read  # noqa: E402
from scipy.spatial.distance import pdist  # noqa: E402

from mlipviz import keys  # noqa: E402
from mlipviz.widgets import DatasetExplorer, TrainingMonitor, dataset_explorer  # noqa: E402

REF = keys.energy_key("ccsdt_ccpvdz")
REF_F = keys.forces_key("ccsdt_ccpvdz")


@pytest.fixture()
def waters(embedded_water):
    return embedded_water[:6]


def centroid_distances(images):
    """A per-atom value independent of the widget: each atom's distance from the molecule's centroid, Å."""
    return [np.linalg.norm(a.positions - a.positions.mean(axis=0), axis=1) for a in images]


def drawn_messages(view):
    """The nglview messages that draw the current structure: its PDB text and its representations."""
    archive = view._ngl_msg_archive
    loads = [m for m in archive if m["methodName"] == "loadFile"]
    reps = [m for m in archive if m["methodName"] == "addRepresentation"]
    return loads, reps


def test_selection_replaces_the_structure_colours_and_table(waters):
    values = centroid_distances(waters)
    energies = np.array([a.info[REF] for a in waters])
    ex = DatasetExplorer(waters, np.arange(6.0), energies, x_label="index", y_label="E (eV)",
                         per_atom=values, per_atom_label="r (Å)", columns={"n atoms": [len(a) for a in waters]})
    view = ex.view
    low = min(v.min() for v in values)
    high = max(v.max() for v in values)
    for i in (0, 4, 2):
        ex.select(i)
        assert ex.selected == i and ex.view is view and list(ex.scatter.selected) == [i]
        loads, reps = drawn_messages(view)
        assert len(view._ngl_component_ids) == 1, "the old structure component is replaced, not kept beside the new"
        assert len(loads) == 1
        drawn = read(io.StringIO(loads[0]["args"][0]["data"]), format="proteindatabank")
        # Same geometry (the view rotates the molecule to face the camera; PDB keeps 3 decimals).
        np.testing.assert_allclose(pdist(drawn.positions), pdist(waters[i].positions), atol=2e-3)
        assert list(drawn.numbers) == list(waters[i].numbers)
        # Colours: one linear scale over every structure's values, low end -99, high end +99 (PDB keeps 2 decimals).
        expected = -99 + 198 * (values[i] - low) / (high - low)
        np.testing.assert_allclose(drawn.get_array("bfactor"), expected, atol=6e-3)
        ball = [m for m in reps if m["args"] == ["ball+stick"]]
        label = [m for m in reps if m["args"] == ["label"]]
        assert len(ball) == 1 and ball[0]["kwargs"]["colorScheme"] == "bfactor"
        assert label[0]["kwargs"]["labelText"] == [f"{v:.3g}" for v in values[i]]
        # Nothing in the replay archive addresses a component before the one loaded now.
        first_load = view._ngl_msg_archive.index(loads[0])
        assert not any(m.get("target") == "compList" for m in view._ngl_msg_archive[:first_load])
        # The table shows structure i's stored energies, and no other structure's.
        table = ex.table.value
        assert f"{waters[i].info[REF]:.6f}" in table
        assert f"{waters[i].info[keys.energy_key('b3lyp_ccpvdz')]:.6f}" in table
        assert not any(f"{e:.6f}" in table for k, e in enumerate(energies) if k != i)
        rms = np.sqrt(np.mean(np.sum(waters[i].arrays[REF_F] ** 2, axis=1)))
        assert f"{rms:.4f}" in table and "CCSD(T)/cc-pVDZ" in table and "B3LYP/cc-pVDZ" in table
        assert f"structure #{i}<" in ex.selection.value
    assert ex.legend is not None and ex.legend.value[:4] == b"\x89PNG"
    assert ex.per_atom_range == pytest.approx((low, high))


def test_without_per_atom_values_atoms_keep_element_colours(waters):
    ex = DatasetExplorer(waters, np.arange(6.0), np.ones(6), x_label="a", y_label="b")
    _, reps = drawn_messages(ex.view)
    assert [m["args"] for m in reps] == [["ball+stick"]] and "colorScheme" not in reps[0]["kwargs"]
    assert ex.legend is None


def test_a_click_through_bqplot_selects_the_structure(waters):
    ex = DatasetExplorer(waters, np.arange(6.0), np.zeros(6), x_label="a", y_label="b")
    # The message bqplot's front end sends for a click on point 3.
    ex.scatter._handle_custom_msgs(None, {"event": "element_click", "data": {"index": 3, "x": 3.0, "y": 0.0}})
    assert ex.selected == 3 and list(ex.scatter.selected) == [3]
    assert "structure #3<" in ex.selection.value and f"{waters[3].info[REF]:.6f}" in ex.table.value
    # The registered handler called directly, with bqplot's callback signature.
    ex.scatter._element_click_handlers(ex.scatter, {"data": {"index": 1}})
    assert ex.selected == 1 and "structure #1<" in ex.selection.value
    with pytest.raises(IndexError, match="index 6"):
        ex.select(6)
    classes = (ex.figure._dom_classes, ex.view_box._dom_classes, ex.selection._dom_classes, ex.widget._dom_classes)
    assert classes == (("mlipviz-explorer-scatter",), ("mlipviz-explorer-view",), ("mlipviz-explorer-label",),
                       ("mlipviz-explorer",))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"x": np.zeros(5)}, r"x has shape \(5,\)"),
        ({"y": [0.0, 1.0, np.nan, 0.0, 0.0, 0.0]}, r"y\[2\] is nan"),
        ({"colour": np.zeros(7)}, "colour has shape"),
        ({"colour": [0.0, 0.0, 0.0, 0.0, np.inf, 0.0]}, r"colour\[4\]"),
        ({"per_atom": [np.zeros(3)] * 5}, "per_atom has 5 arrays"),
        ({"per_atom": [np.zeros(3), np.zeros(4)] + [np.zeros(3)] * 4}, r"per_atom\[1\] has shape \(4,\)"),
        ({"per_atom": [np.zeros(3)] * 3 + [np.array([0.0, np.nan, 0.0])] + [np.zeros(3)] * 2},
         r"per_atom\[3\] is not finite at atom index 1"),
        ({"columns": {"err (meV)": np.zeros(2)}}, r"columns\['err \(meV\)'\]"),
    ],
)
def test_bad_input_is_refused_by_name(waters, change, match):
    kw = {"x": np.zeros(6), "y": np.zeros(6), "x_label": "a", "y_label": "b", **change}
    with pytest.raises(ValueError, match=match):
        DatasetExplorer(waters, **kw)


def test_empty_or_foreign_images_are_refused(waters):
    with pytest.raises(ValueError, match="images is empty"):
        DatasetExplorer([], [], [], x_label="a", y_label="b")
    with pytest.raises(TypeError, match=r"images\[1\]"):
        DatasetExplorer([waters[0], "H2O"], [0, 1], [0, 1], x_label="a", y_label="b")


def test_dataset_explorer_axes_are_the_model_errors(embedded_water, calc):
    images = embedded_water[:10]
    e_pred, f_pred = [], []
    for a in images:  # independent of the widget: the calculator on copies, the labels from atoms.info/arrays
        b = a.copy()
        b.calc = calc
        e_pred.append(b.get_potential_energy())
        f_pred.append(b.get_forces())
    e_ref = np.array([a.info[REF] for a in images])
    err_meV = 1e3 * (np.array(e_pred) - e_ref)

    ex = dataset_explorer(images, calc, y="abs_error")
    np.testing.assert_allclose(ex.y, np.abs(err_meV), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ex.x, e_ref - e_ref.min(), rtol=1e-12, atol=1e-12)
    assert "meV" in ex.y_label and "(eV)" in ex.x_label

    default = dataset_explorer(images, calc)
    np.testing.assert_allclose(default.y, err_meV, rtol=1e-9, atol=1e-9)  # signed error, meV
    for i in range(10):  # per-atom colours: |F_pred - F_ref| per atom, meV/Å
        np.testing.assert_allclose(default.per_atom[i], 1e3 * np.linalg.norm(f_pred[i] - images[i].arrays[REF_F],
                                                                              axis=1), rtol=1e-9, atol=1e-9)
    force_rmse = [1e3 * np.sqrt(np.mean((f_pred[i] - images[i].arrays[REF_F]) ** 2)) for i in range(10)]
    np.testing.assert_allclose(default.colour, force_rmse, rtol=1e-9)
    default.select(7)
    assert f"{err_meV[7]:.4g}" in default.table.value and f"{e_ref[7]:.6f}" in default.table.value


class WithUncertainty(Calculator):
    """An ASE calculator that adds made-up (but structure-dependent) uncertainties to another calculator's results."""

    implemented_properties = ["energy", "forces", keys.ENERGY_UNCERTAINTY, keys.ATOM_UNCERTAINTY]

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        b = self.atoms.copy()
        b.calc = self.inner
        self.results = {"energy": b.get_potential_energy(), "forces": b.get_forces(),
                        keys.ENERGY_UNCERTAINTY: sigma_energy(self.atoms),
                        keys.ATOM_UNCERTAINTY: sigma_atoms(self.atoms)}


def sigma_energy(atoms):
    return 1e-3 + abs(atoms.get_distance(0, 1) - 0.96)  # eV


def sigma_atoms(atoms):
    return 1e-3 * (1.0 + np.arange(len(atoms))) + 0.01 * abs(atoms.positions[:, 0])  # eV/Å


def test_uncertainty_calculator_sets_the_default_axes(embedded_water, calc):
    images = embedded_water[10:15]
    ex = dataset_explorer(images, WithUncertainty(calc))
    e_pred = []
    for a in images:
        b = a.copy()
        b.calc = calc
        e_pred.append(b.get_potential_energy())
    np.testing.assert_allclose(ex.x, [1e3 * sigma_energy(a) for a in images], rtol=1e-12)
    np.testing.assert_allclose(ex.y, 1e3 * np.abs(np.array(e_pred) - [a.info[REF] for a in images]), rtol=1e-9)
    for p, a in zip(ex.per_atom, images):
        np.testing.assert_allclose(p, 1e3 * sigma_atoms(a), rtol=1e-12)
    assert "uncertainty" in ex.x_label and "meV" in ex.x_label and "meV/Å" in ex.per_atom_label


def test_dataset_explorer_refuses_structures_without_the_reference(waters):
    images = [a.copy() for a in waters]
    del images[2].info[REF]
    with pytest.raises(ValueError, match="structure 2"):
        dataset_explorer(images)
    with pytest.raises(ValueError, match="x='nonsense'"):
        dataset_explorer(waters, x="nonsense", y="error")


def test_without_a_calculator_the_second_level_is_compared(waters):
    ex = dataset_explorer(waters)  # B3LYP against CCSD(T), energies relative to the reference's lowest structure
    e_ref = np.array([a.info[REF] for a in waters])
    e_b3 = np.array([a.info[keys.energy_key("b3lyp_ccpvdz")] for a in waters])
    k = int(np.argmin(e_ref))
    np.testing.assert_allclose(ex.y, 1e3 * ((e_b3 - e_b3[k]) - (e_ref - e_ref[k])), rtol=1e-9, atol=1e-9)
    assert "B3LYP" in ex.y_label


# --- training monitor ----------------------------------------------------------------------------------------

def fake_trainer(epoch, sanity=False, **metrics):
    return SimpleNamespace(sanity_checking=sanity, current_epoch=epoch,
                           callback_metrics={k: torch.tensor(v) for k, v in metrics.items()})


def test_monitor_records_epochs_and_redraws_at_most_every_interval():
    mon = TrainingMonitor(label="member 0", min_interval_s=3600)
    mon.on_fit_start(None, None)
    mon.on_validation_epoch_end(fake_trainer(0, sanity=True, val_loss=9.0), None)  # sanity check: ignored
    metrics = [(0.5, 0.02, 0.2), (0.3, 0.01, 0.15), (0.4, 0.015, 0.1)]
    for epoch, (loss, e, f) in enumerate(metrics):
        mon.on_validation_epoch_end(fake_trainer(epoch, val_loss=loss, val_energy_MAE=e, val_forces_MAE=f), None)
    assert [h[keys.HISTORY_EPOCH] for h in mon.history] == [0, 1, 2]
    assert mon.draws == 1  # the first epoch draws; the next ones fall inside the interval
    mon.on_train_end(None, None)
    assert mon.draws == 2
    loss_ax, mae_ax = mon.figure.axes
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [0.5, 0.3, 0.4], rtol=1e-6)
    np.testing.assert_allclose(mae_ax.lines[0].get_ydata(), [20.0, 10.0, 15.0], rtol=1e-5)  # meV
    np.testing.assert_allclose(mae_ax.lines[1].get_ydata(), [200.0, 150.0, 100.0], rtol=1e-5)  # meV/Å
    assert loss_ax.get_yscale() == "log" and mae_ax.get_yscale() == "log"
    status = mon.status.value
    assert "member 0" in status and "epoch 2 (finished)" in status and "best val loss 0.3 (epoch 1)" in status
    assert "best force MAE 100 meV/Å (epoch 2)" in status
    assert mon.output.outputs[0]["data"]["image/png"].startswith("iVBOR")  # base64 of a PNG
    with pytest.raises(ValueError, match="min_interval_s"):
        TrainingMonitor(min_interval_s=-1)


def test_monitor_for_members_and_tabs():
    monitors = TrainingMonitor.for_members(3, min_interval_s=0)
    assert [m.label for m in monitors] == ["member 0", "member 1", "member 2"]
    tab = TrainingMonitor.tabs(monitors)
    assert tab.children == tuple(m.widget for m in monitors) and tab.get_title(2) == "member 2"
    with pytest.raises(ValueError, match="n must be"):
        TrainingMonitor.for_members(0)


def test_monitor_follows_a_real_training_run(tmp_path, embedded_water):
    from mlipviz.potential import ModelConfig, train_potential

    monitor = TrainingMonitor(min_interval_s=0)
    result = train_potential(
        embedded_water[:30], config=ModelConfig(n_atom_basis=8, n_interactions=1, cutoff=4.0), workdir=tmp_path,
        n_train=20, n_val=5, batch_size=10, max_epochs=3, progress=False, device="cpu", callbacks=[monitor],
    )
    assert len(result.history) == 3
    assert len(monitor.history) == len(result.history)
    for mine, theirs in zip(monitor.history, result.history):
        assert mine.keys() == theirs.keys()
        assert mine == pytest.approx(theirs, rel=1e-12)
    loss_ax, mae_ax = monitor.figure.axes
    epochs = [h[keys.HISTORY_EPOCH] for h in result.history]
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), epochs)
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [h[keys.HISTORY_VAL_LOSS] for h in result.history])
    np.testing.assert_allclose(mae_ax.lines[1].get_ydata(),
                               [1e3 * h[keys.HISTORY_VAL_FORCES_MAE] for h in result.history])
    assert monitor.draws == 4  # every epoch (interval 0) and once at the end
    assert "epoch 2 (finished)" in monitor.status.value
