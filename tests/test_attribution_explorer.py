"""mlipviz.widgets.attribution_explorer: the values shown, the view kept in step, the sanity panel, bad input.

Values are compared with the attribution functions run independently, and with energies and forces from the ASE
calculator; the view is read back from the messages nglview queues for the browser.
"""

import io

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from mlipviz.attribution import integrated_gradients
from mlipviz.widgets.attribution_explorer import AttributionExplorer


@pytest.fixture(scope="module")
def images(embedded_water):
    return [embedded_water[k] for k in (0, 7, 42)]


@pytest.fixture(scope="module")
def explorer(images, model_and_config):
    model, config = model_and_config
    return AttributionExplorer(images, model, config)


def _loaded_pdbs(view):
    return [m["args"][0]["data"] for m in (cb._ngl_msg for cb in view._callbacks_before_loaded)
            if m["methodName"] == "loadFile"]


def _distances(atoms):
    return atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]


def test_ig_values_equal_integrated_gradients_run_independently(explorer, images, model_and_config):
    model, config = model_and_config
    values = explorer.set(structure=1, method="ig", target="energy")
    ref = integrated_gradients(model, images[1], cutoff=config.cutoff, baseline="minimum")
    np.testing.assert_allclose(values, ref.atom_attributions, atol=1e-6)
    np.testing.assert_array_equal(explorer.values, values)
    assert explorer.unit == "eV" and "(eV)" in explorer.figure.axes[0].get_ylabel()
    np.testing.assert_allclose([p.get_height() for p in explorer.figure.axes[0].patches], values)
    assert "completeness" in explorer.sanity.value and "passed" in explorer.sanity.value


def test_decomposition_sums_to_the_model_atomisation_energy(explorer, images, calc):
    values = explorer.set(structure=2, method="decomposition")
    work = images[2].copy()
    work.calc = calc
    isolated = 0.0
    for z in images[2].numbers:
        single = Atoms(numbers=[z], positions=[(0.0, 0.0, 0.0)])
        single.calc = calc
        isolated += single.get_potential_energy()
    assert values.sum() == pytest.approx(work.get_potential_energy() - isolated, abs=1e-5)
    assert explorer.target_dropdown.disabled


def test_switching_structure_reloads_the_view_with_its_coordinates(explorer, images):
    explorer.set(structure=0, method="ig", target="energy")
    view = explorer.view
    first = read(io.StringIO(_loaded_pdbs(view)[-1]), format="proteindatabank")
    np.testing.assert_allclose(_distances(first), _distances(images[0]), atol=2e-3)
    explorer.structure_slider.value = 2  # the control, as a user moves it
    assert explorer.structure == 2 and explorer.view is view and len(view._ngl_component_ids) == 1
    drawn = read(io.StringIO(_loaded_pdbs(view)[-1]), format="proteindatabank")
    np.testing.assert_allclose(_distances(drawn), _distances(images[2]), atol=2e-3)
    assert np.abs(_distances(drawn) - _distances(images[0])).max() > 0.01
    scaled = drawn.get_array("bfactor")  # the colours follow the values shown: 99 × v / max|v|
    np.testing.assert_allclose(scaled, 99 * explorer.values / np.abs(explorer.values).max(), atol=0.01)


def test_force_target_ig_is_complete(explorer, images, calc):
    values = explorer.set(structure=0, method="ig", target=1)
    work = images[0].copy()
    work.calc = calc
    force = work.get_forces()[1]
    n = force / np.linalg.norm(force)
    base = explorer.result.baseline.copy()
    base.calc = calc
    expected = np.linalg.norm(force) - base.get_forces()[1] @ n
    assert values.sum() == pytest.approx(expected, abs=2e-3)
    assert explorer.unit == "eV/Å" and explorer.target_dropdown.value == 1
    explorer.method_dropdown.value = "embedding"  # an energy-only method: the target falls back to the energy
    assert explorer.target == "energy" and explorer.method == "embedding"


def test_randomisation_and_symmetry_buttons_fill_the_sanity_panel(explorer):
    explorer.set(structure=0, method="ig", target="energy")
    explorer.randomisation_button.click()
    check, _ = explorer.checks[0]["randomisation"]
    assert -1.0 <= check.spearman <= 1.0
    assert "Spearman" in explorer.sanity.value and f"{check.spearman:+.3f}" in explorer.sanity.value
    assert not explorer.randomisation_button.disabled
    explorer.symmetry_button.click()
    sym, _ = explorer.checks[0]["symmetry"]
    assert sym.rotation_error < 1e-3 and "rotation" in explorer.sanity.value


def test_uncertainty_is_one_more_method(images, model_and_config, calc):
    model, config = model_and_config

    def force_norm(atoms):
        work = atoms.copy()
        work.calc = calc
        return np.linalg.norm(work.get_forces(), axis=1)

    ex = AttributionExplorer(images[:1], model, config, methods=("saliency",), uncertainty=force_norm)
    assert ex.methods == ("saliency", "uncertainty")
    np.testing.assert_allclose(ex.set(method="uncertainty"), force_norm(images[0]))
    np.testing.assert_allclose(ex.set(method="saliency"), force_norm(images[0]), rtol=1e-4)  # |∂E/∂r| = |F|


def test_boxes_carry_their_css_classes(explorer):
    classes = [c for box in explorer.widget.children[:1] for c in box._dom_classes]
    assert "mlipviz-attribution-controls" in classes
    view_box = explorer.widget.children[1].children[0]
    assert "mlipviz-attribution-view" in view_box._dom_classes and view_box.children[0] is explorer.view


def test_bad_input_is_refused_by_name(explorer, images, model_and_config):
    model, config = model_and_config
    with pytest.raises(ValueError, match="images is empty"):
        AttributionExplorer([], model, config)
    with pytest.raises(ValueError, match=r"images\[1\].*C"):
        AttributionExplorer([images[0], Atoms("CH2", positions=images[0].positions)], model, config)
    with pytest.raises(ValueError, match="lrp"):
        AttributionExplorer(images, model, config, methods=("ig", "lrp"))
    with pytest.raises(TypeError, match="uncertainty"):
        AttributionExplorer(images, model, config, uncertainty=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="method='lrp'"):
        explorer.set(method="lrp")
    with pytest.raises(ValueError, match="target"):
        explorer.set(method="ig", target=3)
    with pytest.raises(ValueError, match="energy only"):
        explorer.set(method="decomposition", target=0)
    with pytest.raises(ValueError, match="structure"):
        explorer.set(structure=3)
