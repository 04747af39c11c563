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


def test_scale_to_bfactor_on_a_given_range():
    scaled, ends = scale_to_bfactor([1.0, 2.5, 4.0], value_range=(0.0, 5.0))
    assert ends == (0.0, 5.0)
    np.testing.assert_allclose(scaled, [-99 + 198 * v / 5 for v in (1.0, 2.5, 4.0)])  # by hand: linear in v
    scaled, _ = scale_to_bfactor([-1.0, 0.5], value_range=(-2.0, 2.0))
    np.testing.assert_allclose(scaled, [-49.5, 24.75])  # a symmetric range: 99 v / 2
    for kwargs, match in [({"value_range": (0.0, 3.0)}, r"values\[2\] = 4.0 lies outside value_range"),
                          ({"value_range": (1.0, 1.0)}, "low < high"),
                          ({"value_range": (0.0, np.nan)}, r"value_range\[1\] must be a finite number"),
                          ({"value_range": 3.0}, "must be a pair"),
                          ({"value_range": (0.0, 5.0), "symmetric": True}, "not both")]:
        with pytest.raises(ValueError, match=match):
            scale_to_bfactor([1.0, 2.5, 4.0], **kwargs)


def _archive_parts(view):
    """The replayed messages: the PDB of each loaded structure, and the addRepresentation messages."""
    loads = [m["args"][0]["data"] for m in view._ngl_msg_archive if m["methodName"] == "loadFile"]
    reps = [m for m in view._ngl_msg_archive if m["methodName"] == "addRepresentation"]
    return loads, reps


def test_draw_structure_replaces_the_structure_in_an_existing_view(water_reference):
    import nglview

    from mlipviz.views import draw_structure

    view = nglview.NGLWidget()
    methane = molecule("CH4")
    first = draw_structure(view, water_reference, [0.1, -0.2, 0.3], replace=True, width=300, height=250)
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    drawn = draw_structure(view, methane, values, replace=True, value_range=(-1.0, 5.0), show_values=False,
                           width=300, height=250)
    assert (view._view_width, view._view_height) == ("300px", "250px")
    assert len(view._ngl_component_ids) == 1 and view._ngl_component_ids[0] == drawn.component.id
    assert first.component.id not in view._ngl_component_ids
    loads, reps = _archive_parts(view)
    assert len(loads) == 1  # the replay archive draws methane only
    back = read(io.StringIO(loads[0]), format="proteindatabank")
    assert list(back.numbers) == list(methane.numbers)
    np.testing.assert_allclose(back.get_all_distances(), methane.get_all_distances(), atol=2e-3)
    np.testing.assert_allclose(back.get_array("bfactor"), -99 + 198 * (values + 1) / 6, atol=6e-3)  # the range given
    assert drawn.value_range == (-1.0, 5.0) and drawn.cmap == SEQUENTIAL_SCALE
    assert [m["args"] for m in reps] == [["ball+stick"]]  # show_values=False: no labels; the water's are gone
    assert reps[0]["component_index"] == 0 and reps[0]["kwargs"]["colorScheme"] == "bfactor"
    first_load = next(k for k, m in enumerate(view._ngl_msg_archive) if m["methodName"] == "loadFile")
    assert not any(m.get("target") == "compList" for m in view._ngl_msg_archive[:first_load])
    cameras = [m for m in view._ngl_msg_archive if m["kwargs"].get("cameraType")]
    assert [m["kwargs"]["cameraType"] for m in cameras] == ["orthographic"]  # stage-wide: kept once
    clip = [m["kwargs"]["clipDist"] for m in view._ngl_msg_archive if "clipDist" in m["kwargs"]][-1]
    assert clip == pytest.approx(fit_clip_distance(drawn.frames, 300, 250, 0.3))
    np.testing.assert_allclose(drawn.frames[0].get_all_distances(), methane.get_all_distances(), atol=1e-9)


def test_draw_structure_without_replace_adds_a_component(water_reference):
    import nglview

    from mlipviz.views import draw_structure

    view = nglview.NGLWidget()
    draw_structure(view, molecule("CH4"))
    drawn = draw_structure(view, water_reference)
    assert len(view._ngl_component_ids) == 2 and view._ngl_component_ids[1] == drawn.component.id
    msgs = [cb._ngl_msg for cb in view._callbacks_before_loaded]
    last_rep = [m for m in msgs if m["methodName"] == "addRepresentation"][-1]
    assert last_rep["args"] == ["ball+stick"] and last_rep["component_index"] == 1
    assert "colorScheme" not in last_rep["kwargs"] and drawn.value_range is None and drawn.cmap is None
    assert msgs[-1]["methodName"] == "autoView" and msgs[-1]["component_index"] == 1


def test_draw_structure_refuses_bad_input_and_leaves_the_view_as_it_was(water_reference):
    import nglview

    from mlipviz.views import draw_structure

    view = nglview.NGLWidget()
    draw_structure(view, water_reference, [1.0, 2.0, 3.0], replace=True)
    ids, archive = list(view._ngl_component_ids), list(view._ngl_msg_archive)
    cases = [
        ({"values": [1.0, 2.0]}, ValueError, "values has 2 entries but the structure has 3 atoms"),
        ({"values": [1.0, 2.0, 9.0], "value_range": (0.0, 5.0)}, ValueError, "lies outside value_range"),
        ({"value_range": (0.0, 5.0)}, ValueError, "give values with them"),
        ({"values": [1.0, 2.0, 3.0], "cmap": "no-such-map"}, ValueError, "cmap='no-such-map' is not the name"),
        ({"values": [1.0, 2.0, 3.0], "representation": "cartoon"}, ValueError, "representation='cartoon'"),
        ({"values": [1.0, 2.0, 3.0], "height": 20}, ValueError, "height must be a canvas size"),
    ]
    for kwargs, err, match in cases:
        with pytest.raises(err, match=match):
            draw_structure(view, water_reference, replace=True, **kwargs)
        assert view._ngl_component_ids == ids and view._ngl_msg_archive == archive
    with pytest.raises(TypeError, match="view must be an nglview.NGLWidget, got VBox"):
        draw_structure(view_structure(water_reference), water_reference)


def _sent(view):
    return [cb._ngl_msg for cb in view._callbacks_before_loaded]


def _kabsch(original, drawn):
    """The rotation R with drawn − centre ≈ (original − centre) Rᵀ, by SVD.

    Kabsch, Acta Cryst. A 32, 922 (1976), doi:10.1107/S0567739476001873.
    """
    p, q = original - original.mean(axis=0), drawn - drawn.mean(axis=0)
    u, _, vt = np.linalg.svd(p.T @ q)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def _arrows(messages):
    """(starts, ends) of the arrows of the last addShape message, and the message's shape list."""
    shape = [m for m in messages if m["methodName"] == "addShape"][-1]
    items = shape["args"][1]
    assert all(s[0] == "arrow" for s in items)
    return np.array([s[1] for s in items]), np.array([s[2] for s in items]), items


def test_force_arrows_start_at_the_atoms_and_turn_with_the_camera(rng):
    import nglview

    from mlipviz.views import draw_structure

    atoms = molecule("CH3CH2OH")
    forces = rng.normal(0.0, 1.5, (len(atoms), 3))
    view = nglview.NGLWidget()
    drawn = draw_structure(view, atoms, arrows=forces, arrow_colour="tab:green")
    starts, ends, items = _arrows(_sent(view))
    placed = drawn.frames[0].positions
    rotation = _kabsch(atoms.positions, placed)
    np.testing.assert_allclose((atoms.positions - atoms.positions.mean(0)) @ rotation.T, placed, atol=1e-9)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    norms = np.linalg.norm(forces, axis=1)
    assert drawn.arrow_scale == pytest.approx(1.0 / norms.max())  # the longest arrow is 1 Å
    np.testing.assert_allclose(starts, placed, atol=1e-9)
    np.testing.assert_allclose(ends, placed + drawn.arrow_scale * forces @ rotation.T, atol=1e-9)
    assert np.linalg.norm(ends - starts, axis=1).max() == pytest.approx(1.0)
    assert [tuple(s[3]) for s in items][0] == pytest.approx(to_rgb("tab:green")) and items[0][4] > 0
    pdb = next(m for m in _sent(view) if m["methodName"] == "loadFile")["args"][0]["data"]
    np.testing.assert_allclose(read(io.StringIO(pdb), format="proteindatabank").positions, starts, atol=1e-3)
    assert len(view._ngl_component_ids) == 2 and view._ngl_component_ids[1] == drawn.arrows.id

    fixed = draw_structure(view, atoms, arrows=forces, arrow_scale=0.25, replace=True)
    starts, ends, _ = _arrows(view._ngl_msg_archive)
    np.testing.assert_allclose(np.linalg.norm(ends - starts, axis=1), 0.25 * norms, atol=1e-9)  # Å per eV/Å
    assert fixed.arrow_scale == 0.25 and len(view._ngl_component_ids) == 2
    assert [m["methodName"] for m in view._ngl_msg_archive].count("addShape") == 1  # the old arrows are gone
    assert view._ngl_component_ids[1] == fixed.arrows.id


def test_arrows_with_zero_length_are_left_out_and_the_fit_includes_the_tips(water_reference):
    import nglview

    from mlipviz.views import draw_structure

    outward = water_reference.positions - water_reference.positions.mean(axis=0)
    forces = 3.0 * outward / np.linalg.norm(outward, axis=1)[:, None]
    forces[0] = 0.0
    view = nglview.NGLWidget()
    drawn = draw_structure(view, water_reference, arrows=forces, width=300, height=250)
    starts, _, items = _arrows(_sent(view))
    assert len(items) == 2
    np.testing.assert_allclose(starts, drawn.frames[0].positions[1:], atol=1e-9)  # atom 0 has no force
    clip = [m["kwargs"]["clipDist"] for m in _sent(view) if "clipDist" in m["kwargs"]][-1]
    w, h = _ngl_view(drawn.frames, clip, 300, 250)  # the canvas NGL shows, Å
    pos, tips = drawn.frames[0].positions, _arrows(_sent(view))[1]
    centre = 0.5 * (pos.min(axis=0) + pos.max(axis=0))
    reach = np.abs(np.vstack([pos, tips]) - centre).max(axis=0) + 0.3  # atoms and tips, with the atoms' radius
    assert max(2 * reach[0] / w, 2 * reach[1] / h) == pytest.approx(FILL, rel=1e-9)  # all in, tightly
    assert clip > fit_clip_distance(drawn.frames, 300, 250, 0.3)  # a tip sticks out: the camera steps back


def test_view_structure_states_the_arrow_scale(water_reference):
    box = view_structure(water_reference, values=[0.1, -0.2, 0.3], arrows=[[0, 0, 4.0], [1, 0, 0], [0, 0, 0]])
    assert box.drawn.arrow_scale == pytest.approx(0.25)
    assert "1 Å of arrow = 4 eV/Å" in box.children[2].value and "force" in box.children[2].value


def test_arrows_and_values_per_frame_follow_the_view_frame(water_reference, rng):
    frames = []
    for k in range(4):
        f = water_reference.copy()
        f.positions += rng.normal(0, 0.05, f.positions.shape)
        frames.append(f)
    forces = rng.normal(0, 1.0, (4, 3, 3))
    values = rng.uniform(-1.0, 2.0, (4, 3))
    box = view_structure(frames, values=values, arrows=forces, show_values=False)
    m = np.abs(values).max()
    assert box.drawn.value_range == (-m, m) and box.drawn.arrow_scale == pytest.approx(
        1 / np.linalg.norm(forces, axis=2).max())
    assert box.children[1].value == colour_legend(-m, m, "value", "eV", cmap=COLOR_SCALE)
    faced = face_camera(frames)
    rotation = _kabsch(frames[0].positions, faced[0].positions)
    for k in (2, 3, 1):
        box.view.frame = k
        assert box.drawn.frame == k
        starts, ends, _ = _arrows(box.view._ngl_msg_archive)
        np.testing.assert_allclose(starts, faced[k].positions, atol=1e-9)  # frame k's atoms
        np.testing.assert_allclose(ends - starts, box.drawn.arrow_scale * forces[k] @ rotation.T, atol=1e-9)
        pdb = next(x for x in box.view._ngl_msg_archive if x["methodName"] == "loadFile")["args"][0]["data"]
        back = read(io.StringIO(pdb), format="proteindatabank")
        np.testing.assert_allclose(back.get_array("bfactor"), scale_to_bfactor(values[k], value_range=(-m, m))[0],
                                   atol=0.006)
        np.testing.assert_allclose(back.positions, faced[k].positions, atol=1e-3)
        assert len(box.view._ngl_component_ids) == 2


def test_draw_structure_draws_the_frame_asked_for(water_reference):
    import nglview

    from mlipviz.views import draw_structure

    frames = [water_reference.copy() for _ in range(3)]
    frames[2].positions[1] += [0.3, 0.0, 0.0]
    values = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [5.0, 1.0, 4.0]])
    view = nglview.NGLWidget()
    drawn = draw_structure(view, frames, values, frame=2, show_values=False)
    assert drawn.frame == 2 and drawn.value_range == (1.0, 5.0)
    pdb = next(m for m in _sent(view) if m["methodName"] == "loadFile")["args"][0]["data"]
    back = read(io.StringIO(pdb), format="proteindatabank")
    np.testing.assert_allclose(back.get_array("bfactor"), -99 + 198 * (values[2] - 1.0) / 4.0, atol=0.006)
    np.testing.assert_allclose(back.get_all_distances(), frames[2].get_all_distances(), atol=2e-3)
    assert view.max_frame == 2


def test_per_frame_input_is_refused_by_name(water_reference):
    import nglview

    from mlipviz.views import draw_structure

    frames = [water_reference.copy() for _ in range(4)]
    view = nglview.NGLWidget()
    nan = np.zeros((3, 3))
    nan[1, 2] = np.nan
    cases = [
        ({"values": np.zeros((3, 3))}, ValueError, r"values has shape \(3, 3\) but the structure has 4 frame"),
        ({"values": np.where(np.eye(4, 3) > 0, np.inf, 0.0)}, ValueError, r"values\[0, 0\] is inf"),
        ({"values": np.full((4, 3), 6.0), "value_range": (0, 5)}, ValueError, r"values\[0, 0\] = 6.0 lies outside"),
        ({"values": np.zeros((4, 3, 1))}, ValueError, r"values has shape \(4, 3, 1\)"),
        ({"arrows": np.zeros((3, 2))}, ValueError, r"arrows has shape \(3, 2\).*give \(3, 3\)"),
        ({"arrows": np.zeros((2, 3, 3))}, ValueError, r"arrows has shape \(2, 3, 3\)"),
        ({"arrows": nan}, ValueError, r"arrows has NaN or infinite components \(atom index\(es\) \[1\]\)"),
        ({"arrows": np.stack([np.zeros((3, 3)), nan, nan, nan])}, ValueError, r"frame 1, atom index\(es\) \[1\]"),
        ({"arrows": np.ones((3, 3)), "arrow_scale": -1.0}, ValueError, "arrow_scale must be a positive length"),
        ({"arrows": np.ones((3, 3)), "arrow_scale": np.nan}, ValueError, "arrow_scale must be a finite number"),
        ({"arrow_scale": 1.0}, ValueError, "give arrows with it"),
        ({"arrows": np.ones((3, 3)), "arrow_colour": "no-such"}, ValueError, "arrow_colour='no-such' is not"),
        ({"frame": 4}, ValueError, r"frame=4 is not a frame of the structure \(0..3\)"),
        ({"frame": 1.0}, TypeError, "frame must be an integer"),
    ]
    for kwargs, err, match in cases:
        with pytest.raises(err, match=match):
            draw_structure(view, frames, **kwargs)
        assert view._ngl_component_ids == []
    with pytest.raises(ValueError, match=r"arrows has shape \(4, 3\)"):
        view_structure(water_reference, arrows=np.zeros((4, 3)))
