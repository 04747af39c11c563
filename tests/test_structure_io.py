"""The structure-file reader: malformed, odd and hostile files give a clear error, never a hang."""

import gzip
import re
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlipviz.reference import rattle_sample
from mlipviz.reference.campaign import cli
from mlipviz.structure_io import as_atoms, load_images

WATER = "3\nwater\nO 0.0 0.0 0.0\nH 0.0 -0.757 0.587\nH 0.0 0.757 0.587\n"
WATER_POSITIONS = [(0.0, 0.0, 0.0), (0.0, -0.757, 0.587), (0.0, 0.757, 0.587)]


def _file(tmp_path, text, name="g.xyz"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _loads_or_refuses(path):
    """The reader's contract: valid structures, or a ValueError that names the file (any other type fails)."""
    try:
        images = load_images(path)
    except ValueError as err:
        assert path.name in str(err), str(err)
        return None
    assert isinstance(images, list) and images
    for a in images:
        assert isinstance(a, Atoms) and len(a) > 0 and np.isfinite(a.positions).all()
    return images


# --- counts that used to hang the reader --------------------------------------------------------------


@pytest.mark.timeout(30)
def test_negative_atom_count_is_refused_everywhere(tmp_path):
    path = _file(tmp_path, "-2\n\nO 0 0 0\n")
    with pytest.raises(ValueError, match=r"g\.xyz: line 1 announces -2 atoms; an atom count cannot be negative"):
        load_images(path)
    with pytest.raises(ValueError, match="line 1 announces -2 atoms"):
        as_atoms(path)
    with pytest.raises(ValueError, match="line 1 announces -2 atoms"):
        rattle_sample(path, 2)
    second = _file(tmp_path, WATER + "-1\n\n", "second.xyz")
    with pytest.raises(ValueError, match=r"second\.xyz: line 6 announces -1 atoms"):
        load_images(second)


@pytest.mark.timeout(30)
def test_absurd_atom_count_is_refused(tmp_path):
    with pytest.raises(ValueError, match="frame at line 1 announces 1000000 atoms but the file ends after 1"):
        load_images(_file(tmp_path, "1000000\n\nO 0 0 0\n"))
    # ASE's own scan would read 10**29 empty lines at the end of the file
    with pytest.raises(ValueError, match=r"frame at line 1 announces 1000000000.*\(30 digits\) atoms but the file"):
        load_images(_file(tmp_path, "1" + "0" * 29 + "\n\nO 0 0 0\n"))
    with pytest.raises(ValueError, match="line 1 should hold an atom count"):
        load_images(_file(tmp_path, "9" * 5000 + "\n\nO 0 0 0\n"))  # beyond Python's int-from-text limit


@pytest.mark.timeout(30)
def test_absurd_property_columns_are_refused(tmp_path):
    """ASE builds one record field per announced column, so 10**11 columns would never finish."""
    props = "Properties=species:S:1:pos:R:99999999999"
    with pytest.raises(ValueError, match="line 3 should describe one atom in 100000000000 columns .*found 4"):
        load_images(_file(tmp_path, f"1\n{props}\nO 0 0 0\n"))
    with pytest.raises(ValueError, match="comment line 2 announces 100000000000 columns per atom"):
        load_images(_file(tmp_path, f"0\n{props}\n"), check=False)
    with pytest.raises(ValueError, match="comment line 2 has Properties='species:S:1:pos:X:3', which is not"):
        load_images(_file(tmp_path, "1\nProperties=species:S:1:pos:X:3\nO 0 0 0\n"))


@pytest.mark.timeout(30)
def test_headers_ase_would_misread_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"line 1 should hold an atom count, found '3 atoms'"):
        load_images(_file(tmp_path, "3 atoms\n" + WATER.split("\n", 1)[1]))
    # ASE stops at a blank line: the second frame would silently vanish
    with pytest.raises(ValueError, match="line 6 is blank but line 7 holds more text"):
        load_images(_file(tmp_path, WATER + "\n" + WATER))
    with pytest.raises(ValueError, match="line 1 is blank but line 2 holds more text"):
        load_images(_file(tmp_path, "\n" + WATER))
    with pytest.raises(ValueError, match="line 4 should describe one atom in 4 columns .*found 0"):
        load_images(_file(tmp_path, "2\n\nO 0 0 0\n\nH 0 0 1\n"))
    with pytest.raises(ValueError, match='comment line 2 is not valid extxyz key=value text: Got info item Lattice'):
        load_images(_file(tmp_path, '1\nLattice="1 2 3"\nO 0 0 0\n'))
    vec = "".join(f"VEC{k} 5 0 0\n" for k in (1, 2, 3, 4))
    with pytest.raises(ValueError, match="frame at line 1 has 4 VEC lines"):
        load_images(_file(tmp_path, "1\n\nO 0 0 0\n" + vec))


def test_files_ase_reads_still_load(tmp_path):
    """Layouts ASE reads correctly are not refused by the check that runs first."""
    cases = {
        "lower.xyz": "3\n\no 0 0 0\nh 0 -0.757 0.587\nh 0 0.757 0.587\n",
        "z.extxyz": "3\nProperties=Z:I:1:pos:R:3\n8 0 0 0\n1 0 -0.757 0.587\n1 0 0.757 0.587\n",
        "late.xyz": "3\nProperties=pos:R:3:species:S:1\n0 0 0 O\n0 -0.757 0.587 H\n0 0.757 0.587 H\n",
        "crlf.xyz": WATER.replace("\n", "\r\n"),
        "GAMESS.xyz": WATER.replace("water", "geometry from a GAMESS run"),
        "run@1.xyz": WATER,
        "trailing.xyz": WATER + "\n \n\n",
    }
    for name, text in cases.items():
        (a,) = load_images(_file(tmp_path, text, name))
        assert a.get_chemical_symbols() == ["O", "H", "H"], name
        np.testing.assert_allclose(a.positions, WATER_POSITIONS, err_msg=name)
    gz = tmp_path / "w.xyz.gz"
    gz.write_bytes(gzip.compress((WATER + WATER).encode()))
    assert len(load_images(gz)) == 2
    vec = _file(tmp_path, "2\n\nH 0 0 0\nH 0 0 0.74\nVEC1 5 0 0\nVEC2 0 5 0\nVEC3 0 0 6\n", "vec.xyz")
    np.testing.assert_allclose(load_images(vec)[0].cell.lengths(), [5, 5, 6])


# --- encodings, frame indices, empty files -------------------------------------------------------------


def test_non_utf8_file_is_named(tmp_path):
    latin1 = _file(tmp_path, "3\nÅngström\nO 0 0 0\nH 0 0 1\nH 0 1 0\n".encode("latin-1"), "lat.xyz")
    with pytest.raises(ValueError, match=r"lat\.xyz is not UTF-8 text: byte 0xc5 at byte offset 2"):
        load_images(latin1)
    binary = _file(tmp_path, bytes(range(256)), "bin.extxyz")
    with pytest.raises(ValueError, match=r"bin\.extxyz is not UTF-8 text: byte 0x80 at byte offset 128"):
        load_images(binary)
    gz = tmp_path / "lat.xyz.gz"
    gz.write_bytes(gzip.compress(latin1.read_bytes()))
    with pytest.raises(ValueError, match=r"not UTF-8 text: .*offset 2 \(after decompression\)"):
        load_images(gz)


def test_frame_index_out_of_range_names_the_count(tmp_path):
    one = _file(tmp_path, WATER, "one.xyz")
    assert len(load_images(one, 0)) == len(load_images(one, -1)) == 1
    for index in (5, 1, -2, "5"):
        with pytest.raises(IndexError, match=rf"one\.xyz holds 1 frame\(s\); frame index {index} is out of range"):
            load_images(one, index)
    traj = tmp_path / "two.traj"
    write(traj, [Atoms("H2", positions=[(0, 0, 0), (0, 0, z)]) for z in (0.7, 0.8)])
    assert load_images(traj, -2)[0].positions[1, 2] == pytest.approx(0.7)
    for index in (2, -3):
        with pytest.raises(IndexError, match=rf"two\.traj holds 2 frame\(s\); frame index {index} is out of range"):
            load_images(traj, index)
    with pytest.raises(ValueError, match="index 'last' is not a frame number or slice"):
        load_images(one, "last")
    assert load_images(one, "3:5") == []  # a slice that selects nothing is empty, as in Python


def test_file_without_structures_is_refused(tmp_path):
    for name, text in {"empty.xyz": "", "blank.xyz": "\n\n  \n\t\n", "empty.traj": ""}.items():
        path = _file(tmp_path, text, name)
        with pytest.raises(ValueError, match=re.escape(name) + " holds no structures"):
            load_images(path)
    with pytest.raises(ValueError, match=r"blank\.xyz holds no structures"):
        as_atoms(tmp_path / "blank.xyz")


# --- the campaign command line --------------------------------------------------------------------------


BAD_FILES = {
    "negative.xyz": b"-2\n\nO 0 0 0\n",
    "absurd.xyz": b"99999999999\n\nO 0 0 0\n",
    "latin1.xyz": "1\nÅ\nO 0 0 0\n".encode("latin-1"),
    "blank.xyz": b"\n\n",
    "unknown.xyz": b"1\n\nXx 0 0 0\n",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [*BAD_FILES, "missing.xyz"])
def test_campaign_cli_stops_on_a_bad_geometry_file(tmp_path, monkeypatch, capsys, name):
    def no_campaign(*args, **kwargs):
        raise AssertionError("the campaign started on a bad geometry file")

    monkeypatch.setattr(cli, "run_campaign", no_campaign)
    path = tmp_path / name
    if name in BAD_FILES:
        path.write_bytes(BAD_FILES[name])
    store = tmp_path / "s.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(path), "--level", "HF/sto-3g", "--store", str(store), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: geometries:" in err and name in err, err
    assert not store.exists()


@pytest.mark.timeout(120)
def test_campaign_command_on_negative_count_exits_2_without_traceback(tmp_path):
    path = _file(tmp_path, BAD_FILES["negative.xyz"], "negative.xyz")
    store = tmp_path / "s.jsonl"
    cmd = [sys.executable, "-m", "mlipviz.reference.campaign", str(path), "--level", "HF/sto-3g",
           "--store", str(store), "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=100)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"python -m mlipviz.reference.campaign: error: geometries: {path}: line 1 announces -2 atoms; "
        "an atom count cannot be negative."
    ]
    assert not store.exists()


# --- fuzzing: any file loads into valid structures or raises ValueError ------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.timeout(60)
@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz_bytes.xyz"
    path.write_bytes(data)
    _loads_or_refuses(path)


@pytest.mark.timeout(60)
@FUZZ
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_fuzz_random_text(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "fuzz_text.extxyz"
    path.write_bytes(text.encode())
    _loads_or_refuses(path)


_ATOM = st.tuples(st.sampled_from(["H", "O", "C", "h", "Xx", "1", ""]),
                  st.lists(st.sampled_from(["0", "1.5", "-2", "nan", "x", "1e400", ""]), min_size=0, max_size=4))
_COMMENT = st.one_of(
    st.sampled_from(["", "water", "Properties=species:S:1:pos:R:3", "Properties=species:S:1:pos:R:99999999999",
                     "Properties=Z:I:1:pos:R:3", 'Lattice="1 0 0 0 1 0 0 0 1"', 'Lattice="1 2"', "pbc=\"T T\"",
                     "energy=abc", '_JSON [[[[', "a=_JSON " + "[" * 2000, 'x="unterminated', "VEC1 1 0 0"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40),
)
_COUNT_SHIFT = st.sampled_from([0, 0, 0, 1, -1, -5, 10**12, -(10**12)])


@pytest.mark.timeout(60)
@FUZZ
@given(frames=st.lists(st.tuples(_COUNT_SHIFT, _COMMENT, st.lists(_ATOM, max_size=3)), max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 200)), gap=st.booleans())
def test_fuzz_xyz_frames(tmp_path_factory, frames, cut, gap):
    """Frames with wrong, negative and absurd counts, garbage comments and atom lines, truncated files."""
    chunks = []
    for shift, comment, atoms in frames:
        rows = [" ".join([sym, *coords]) for sym, coords in atoms]
        chunks.append("\n".join([str(len(rows) + shift), comment, *rows]) + "\n")
    text = ("\n" if gap else "").join(chunks)
    text = text if cut is None else text[:cut]
    path = tmp_path_factory.getbasetemp() / "fuzz_frames.xyz"
    path.write_bytes(text.encode())
    _loads_or_refuses(path)


@pytest.mark.timeout(60)
@FUZZ
@given(frames=st.lists(st.lists(st.tuples(st.sampled_from(["H", "C", "O"]), st.integers(-50, 50)),
                                min_size=1, max_size=4, unique_by=lambda t: t[1]), min_size=1, max_size=4))
def test_fuzz_well_formed_files_load_exactly(tmp_path_factory, frames):
    """A well-formed file loads frame for frame, with the symbols and positions that were written."""
    text = ""
    for atoms in frames:
        text += f"{len(atoms)}\nframe\n" + "".join(f"{s} {z * 0.5} 0 0\n" for s, z in atoms)
    path = tmp_path_factory.getbasetemp() / "fuzz_good.xyz"
    path.write_bytes(text.encode())
    images = load_images(path)
    assert [a.get_chemical_symbols() for a in images] == [[s for s, _ in atoms] for atoms in frames]
    for a, atoms in zip(images, frames, strict=True):
        np.testing.assert_allclose(a.positions[:, 0], [z * 0.5 for _, z in atoms])
