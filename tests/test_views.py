"""mlipviz.views: the B-factor scaling that carries per-atom values to nglview, colours, fitting, and the widget."""

import io
import math

import matplotlib
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import read, write
from matplotlib.colors import Normalize, to_rgb

from mlipviz.views import colour_legend, fit_clip_distance, scale_to_bfactor, view_structure
from mlipviz.views.ngl import COLOR_SCALE, FILL, SEQUENTIAL_SCALE, face_camera


def test_large_values_fit_the_pdb_column():
    values = np.array([-15000.0, 2.5, 12345.6])
    scaled, (low, high) = scale_to_bfactor(values)
    assert (low, high) == (-15000.0, 15000.0)
    assert np.abs(scaled).max() <= 99.0
    atoms = Atoms("OH2", positions=np.eye(3) * 2)
    atoms.set_array("bfactor", scaled)
    buf = io.StringIO()
    write(buf, atoms, format="proteindatabank")
    back = read(io.StringIO(buf.getvalue()), format="proteindatabank")
    np.testing.assert_allclose(back.get_array("bfactor"), scaled, atol=0.01)  # survives the PDB round trip
    true_again = low + (back.get_array("bfactor") + 99) / 198 * (high - low)
    np.testing.assert_allclose(true_again, values, atol=0.01 * (high - low) / 198)  # the column's resolution


def test_extreme_values_do_not_overflow():
    scaled, (low, high) = scale_to_bfactor([1e308, -1e308, 0])
    np.testing.assert_allclose(scaled, [99, -99, 0])
    assert (low, high) == (-1e308, 1e308)
    scaled, (low, high) = scale_to_bfactor([1e308, -1e308, 0], symmetric=False)
    np.testing.assert_allclose(scaled, [99, -99, 0])
    for v in ([1e308, 1e308], [1.7e308, 1.7e308], [-3.0, -3.0]):
        scaled, (low, high) = scale_to_bfactor(v)
        assert np.all(np.isfinite(scaled)) and np.abs(scaled).max() <= 99 and math.isfinite(low) and low < high


def test_one_signed_values_use_their_range():
    scaled, (low, high) = scale_to_bfactor([1.0, 2.0, 3.0])
    assert (low, high) == (1.0, 3.0)
    np.testing.assert_allclose(scaled, [-99, 0, 99])


def test_bad_values_are_named(water_reference):
    with pytest.raises(ValueError, match="NaN or infinity at atom index"):
        scale_to_bfactor([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="values has 2 entries but the structure has 3 atoms"):
        view_structure(water_reference, values=[1.0, 2.0])


@pytest.mark.parametrize(
    ("args", "match"),
    [((np.nan, 1), "low must be a finite number"), ((0, np.inf), "high must be a finite number"),
     ((2, 1), "low must be below high"), ((1, 1), "low must be below high"), (("a", 1), "low must be a finite")],
)
def test_colour_legend_refuses_bad_ranges(args, match):
    with pytest.raises(ValueError, match=match):
        colour_legend(*args)


def test_view_structure_refuses_what_it_cannot_draw(water_reference):
    nan = water_reference.copy()
    nan.positions[2, 1] = np.nan
    cases = [
        (nan, {}, ValueError, r"frame 0 of structure has NaN or infinite positions for atom index\(es\) \[2\]"),
        (Atoms(), {}, ValueError, "frame 0 of structure has no atoms"),
        ([water_reference, molecule("CH4")], {}, ValueError, "frame 1 of structure has 5 atoms but frame 0 has 3"),
        ([water_reference, Atoms("OHF", positions=water_reference.positions)], {}, ValueError, "other elements"),
        (water_reference, {"representation": "bogus"}, ValueError, "representation='bogus' is not one of"),
        (water_reference, {"width": 0}, ValueError, "width must be a canvas size"),
        ([], {}, ValueError, "empty trajectory"),
        ("H2O", {}, TypeError, "structure must be an ase.Atoms"),
        ([water_reference, "H2O"], {}, TypeError, "frame 1 of structure is a str"),
    ]
    for structure, kwargs, err, match in cases:
        with pytest.raises(err, match=match):
            view_structure(structure, **kwargs)


def _messages(box):
    return [cb._ngl_msg for cb in box.view._callbacks_before_loaded]


def _drawn_colours(box, low, high):
    """The colour NGL gives each atom: its B-factor, read back from the PDB sent to the browser, placed on the
    colour stops sent with the representation and interpolated linearly in RGB (NGL's colorMode "rgb")."""
    msgs = _messages(box)
    pdb = next(m for m in msgs if m["methodName"] == "loadFile")["args"][0]["data"]
    b = read(io.StringIO(pdb), format="proteindatabank").get_array("bfactor")
    rep = next(m for m in msgs if m["methodName"] == "addRepresentation" and "colorScale" in m["kwargs"])["kwargs"]
    assert rep["colorScheme"] == "bfactor" and rep["colorMode"] == "rgb"
    stops = np.array([to_rgb(c) for c in rep["colorScale"]])
    lo, hi = rep["colorDomain"]
    t = (b - lo) / (hi - lo) * (len(stops) - 1)
    return np.stack([np.interp(t, np.arange(len(stops)), stops[:, k]) for k in range(3)], axis=1)


def test_signed_values_get_a_diverging_map_that_matches_the_legend(water_reference):
    values = np.array([0.1, -0.2, 0.3])
    box = view_structure(water_reference, values=values, label="attribution")
    drawn = _drawn_colours(box, -0.3, 0.3)
    legend_colours = matplotlib.colormaps[COLOR_SCALE](Normalize(-0.3, 0.3)(values))[:, :3]
    np.testing.assert_allclose(drawn, legend_colours, atol=0.02)
    zero = _drawn_colours(view_structure(water_reference, values=[0.0, -1.0, 1.0]), -1, 1)[0]
    np.testing.assert_allclose(zero, matplotlib.colormaps[COLOR_SCALE](0.5)[:3], atol=0.01)  # zero: the centre
    assert box.children[1].value == colour_legend(-0.3, 0.3, "attribution", "eV", cmap=COLOR_SCALE)


def test_one_signed_values_get_a_sequential_map(water_reference):
    values = np.array([2.0, 5.0, 3.0])
    box = view_structure(water_reference, values=values, label="|F|", unit="eV/Å")
    drawn = _drawn_colours(box, 2.0, 5.0)
    np.testing.assert_allclose(drawn, matplotlib.colormaps[SEQUENTIAL_SCALE](Normalize(2, 5)(values))[:, :3], atol=0.03)
    assert box.children[1].value == colour_legend(2.0, 5.0, "|F|", "eV/Å")  # the default for a one-signed range
    assert box.children[1].value != colour_legend(2.0, 5.0, "|F|", "eV/Å", cmap=COLOR_SCALE)


def _ngl_view(frames, clip_dist, width, height):
    """NGL's camera after autoView (Stage.getZoomForBox, fov 40°) and the world height/width it shows, Å."""
    box = np.ptp(frames[0].positions, axis=0)
    a = 1.0 if height < width else width / height
    fov = math.radians(40.0)
    d = abs(0.5 * (box.max() + math.sqrt(box.min())) / a / math.sin(fov / 2)) + clip_dist
    h = 2 * d * math.tan(fov / 2)
    return h * width / height, h


@pytest.mark.parametrize(("name", "width", "height"), [("H2O", 640, 420), ("CH3CH2OH", 640, 420), ("C6H6", 300, 500)])
def test_the_molecule_fills_the_canvas(name, width, height):
    frames = face_camera([molecule(name)])
    margin = 0.4
    c = fit_clip_distance(frames, width, height, margin)
    w, h = _ngl_view(frames, c, width, height)
    pos = frames[0].positions
    centre = 0.5 * (pos.min(axis=0) + pos.max(axis=0))
    need_w = 2 * (np.abs(pos[:, 0] - centre[0]).max() + margin)
    need_h = 2 * (np.abs(pos[:, 1] - centre[1]).max() + margin)
    assert max(need_w / w, need_h / h) == pytest.approx(FILL, rel=1e-9)  # fills FILL in the tighter direction
    w10, h10 = _ngl_view(frames, 10.0, width, height)  # NGL's default clipDist draws the molecule smaller
    default_fill = max(need_w / w10, need_h / h10)
    assert default_fill < 0.7 * FILL
    if name == "H2O":
        assert default_fill < 0.3  # water in a mostly empty canvas


def test_widget_holds_view_and_legend_and_fits_after_loading(water_reference):
    box = view_structure(water_reference, values=[0.1, -0.2, 0.3], label="attribution", width=500, height=400)
    assert len(box.children) == 2
    png = box.children[1].value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (box.view._view_width, box.view._view_height) == ("500px", "400px")
    names = [m["methodName"] for m in _messages(box)]
    clip = next(m for m in _messages(box) if m["methodName"] == "setParameters" and "clipDist" in m["kwargs"])
    assert names.index("loadFile") < names.index("setParameters") < names.index("autoView")
    assert names[-1] == "autoView" and math.isfinite(clip["kwargs"]["clipDist"])
    traj = [water_reference.copy() for _ in range(3)]
    assert view_structure(traj).view.max_frame == 2
