"""Reading and writing structure files, used by every stage.

Files are read and written with :mod:`ase.io` (extxyz keeps per-level energies, forces and provenance).
xyz/extxyz text is checked line by line before ASE parses it, so a malformed file gives an error that names
the file and line instead of a traceback from inside ASE, and never a reader that loops or runs out of memory
(a negative atom count, or a count or column count larger than the file can hold).
Writes go to a temporary file first and are renamed into place, so an interrupted write never destroys
data that was already on disk.
"""

from __future__ import annotations

import copy
import io
import lzma
import operator
import os
from pathlib import Path

import ase.io
from ase import Atoms
from ase.io.extxyz import key_val_str_to_dict
from ase.io.formats import filetype, get_compression, open_with_compression, string2index

from .geometry import check_atoms, check_symbols

__all__ = ["as_atoms", "load_images", "write_images"]

#: ASE's extxyz reader treats these formats; their text is checked by :func:`_scan_xyz` first.
_XYZ_FORMATS = ("extxyz", "xyz")
#: ASE's default per-atom columns when a comment line names no ``Properties``.
_DEFAULT_PROPERTIES = "species:S:1:pos:R:3"
#: Most per-atom columns accepted in a frame that has no atom lines to compare them with.
_MAX_COLUMNS = 10_000


def _shown(text: str, width: int = 60) -> str:
    """``text`` quoted and cut to ``width`` characters, for an error message."""
    return repr(text if len(text) <= width else text[:width] + "...")


def _count_text(n: int) -> str:
    """An atom count for a message; a count of many digits is abbreviated."""
    s = str(n)
    return s if len(s) <= 20 else f"{s[:12]}... ({len(s)} digits)"


def _read_text(path: Path, compression: str | None) -> str:
    """The file's text (decompressed if needed), as UTF-8 with universal newlines, as ``ase.io`` reads it."""
    if compression:
        try:
            with open_with_compression(str(path), "rb") as fh:
                data = fh.read()
        except (OSError, EOFError, lzma.LZMAError) as err:
            raise ValueError(f"{path} cannot be decompressed as {compression}: {err}") from None
    else:
        data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        where = " (after decompression)" if compression else ""
        raise ValueError(
            f"{path} is not UTF-8 text: byte {data[err.start]:#04x} at byte offset {err.start}{where} cannot be "
            "decoded; save the structures as UTF-8 (or ASCII) xyz/extxyz."
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _columns(path: Path, comment: str, line_no: int, parsed: dict) -> tuple[int, int | None]:
    """Per-atom column layout of one extxyz frame, from its comment line, as ASE's reader will use it.

    The comment line is parsed with ASE's own parser and kept in ``parsed`` (comment line -> info), so ASE
    need not parse it again.

    Returns:
        (number of columns per atom line, column of the element symbols or None when the frame gives
        atomic numbers instead).

    Raises:
        ValueError: if the comment line or its ``Properties`` cannot be read.
    """
    try:
        info = parsed[comment] if comment in parsed else key_val_str_to_dict(comment) if comment else {}
    except Exception as err:  # ASE's parser raises several types; all mean the same thing here
        raise ValueError(f"{path}: comment line {line_no} is not valid extxyz key=value text: {err}") from None
    parsed[comment] = info
    prop = info.get("Properties", _DEFAULT_PROPERTIES)
    bad = ValueError(
        f"{path}: comment line {line_no} has Properties={_shown(str(prop))}, which is not a list of "
        "name:type:columns triplets (type R, I, S or L; columns a positive integer)."
    )
    if not isinstance(prop, str):
        raise bad
    fields = prop.split(":")
    try:
        widths = [int(x) for x in fields[2::3]]
    except ValueError:
        raise bad from None
    triplets = list(zip(fields[::3], fields[1::3], widths, strict=False))
    if not triplets or any(t not in ("R", "I", "S", "L") or w < 1 for _, t, w in triplets):
        raise bad
    total, species = 0, None
    for name, ptype, width in triplets:
        if name == "species" and ptype == "S" and width == 1 and species is None:
            species = total
        total += width
    return total, species


def _scan_xyz(path: Path, text: str, parsed: dict) -> int:
    """Check xyz/extxyz text frame by frame the way ASE's reader walks it, before ASE parses it.

    Args:
        path: The file, for messages.
        text: Its text, newlines already made ``\\n``.
        parsed: Filled with each comment line's parsed key=value info.

    Returns:
        The number of frames.

    Raises:
        ValueError: naming the file and line for a count line that is not a non-negative integer, a frame
            that announces more atoms than the file holds, a missing or short atom line, more per-atom
            columns than the atom lines have, an unknown element symbol, or a blank line with more text
            after it (ASE stops at the first blank line and would silently drop the rest).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    i, frames = 0, 0
    while i < len(lines):
        if not lines[i].strip():
            rest = next((k for k in range(i + 1, len(lines)) if lines[k].strip()), None)
            if rest is not None:
                raise ValueError(
                    f"{path}: line {i + 1} is blank but line {rest + 1} holds more text; frames must follow each "
                    "other without blank lines (a reader stops at the blank line and would drop the rest)."
                )
            break
        try:
            n = int(lines[i])
        except ValueError:
            raise ValueError(
                f"{path}: line {i + 1} should hold an atom count, found {_shown(lines[i])}."
            ) from None
        if n < 0:
            raise ValueError(f"{path}: line {i + 1} announces {n} atoms; an atom count cannot be negative.")
        block = lines[i + 2 : i + 2 + n]
        if len(block) < n:
            raise ValueError(
                f"{path}: frame at line {i + 1} announces {_count_text(n)} atoms but the file ends after "
                f"{len(block)}."
            )
        end = i + 2 + n
        nvec = 0
        while end + nvec < len(lines) and lines[end + nvec].lstrip().startswith("VEC"):
            nvec += 1
        if nvec > 3:
            raise ValueError(f"{path}: frame at line {i + 1} has {nvec} VEC lines; at most 3 cell vectors.")
        # With VEC lines ASE keeps the comment line as plain text and reads symbols and positions only.
        comment = lines[i + 1].strip() if i + 1 < len(lines) else ""  # a count alone on the last line
        ncols, species = (4, 0) if nvec else _columns(path, comment, i + 2, parsed)
        if n == 0 and ncols > _MAX_COLUMNS:
            raise ValueError(f"{path}: comment line {i + 2} announces {ncols} columns per atom.")
        for k, line in enumerate(block, start=i + 3):
            width = len(line.split())
            if width < ncols:
                raise ValueError(
                    f"{path}: line {k} should describe one atom in {ncols} columns (see the Properties on line "
                    f"{i + 2}), found {width}: {_shown(line)}."
                )
        if species is not None:
            try:
                check_symbols([ln.split()[species].capitalize() for ln in block])
            except ValueError as err:
                raise ValueError(f"{path}, frame at line {i + 1}: {err}") from None
        frames += 1
        i = end + nvec
    return frames


def _as_index(index) -> int | slice:
    """``index`` as an int or a slice ("-1" -> -1, ":" -> all, "10:20" -> slice(10, 20))."""
    if isinstance(index, slice):
        return index
    if isinstance(index, str):
        try:
            parsed = string2index(index)
        except ValueError:
            parsed = None
        if not isinstance(parsed, (int, slice)):  # ASE hands back other strings unchanged
            raise ValueError(f"index {index!r} is not a frame number or slice such as ':', '-1' or '10:20'.")
        return parsed
    try:
        return operator.index(index)
    except TypeError:
        raise TypeError(f"index must be an int, a slice or a string such as ':'; got {type(index).__name__}.") from None


def _out_of_range(path: Path, index: int, n_frames: int) -> IndexError:
    valid = f"valid: {-n_frames} to {n_frames - 1}" if n_frames else "it has none"
    return IndexError(f"{path} holds {n_frames} frame(s); frame index {index} is out of range ({valid}).")


def _read(path: Path, source, fmt: str, frames: slice, **kwargs) -> list[Atoms]:
    """``ase.io.read`` of ``frames`` from ``source`` (a path or the checked text), any failure named as ``path``'s."""
    try:
        images = ase.io.read(source, index=frames, format=fmt, do_not_split_by_at_sign=True, **kwargs)
    except Exception as err:
        raise ValueError(f"Could not read {path} as a structure file: {type(err).__name__}: {err}") from err
    return images if isinstance(images, list) else [images]


def load_images(path: str | Path, index: str | int | slice = ":", check: bool = True) -> list[Atoms]:
    """Read structures from any file ASE reads (extxyz, xyz, traj, ...).

    Files named ``.xyz``/``.extxyz`` (also compressed, e.g. ``.xyz.gz``) are read as extxyz, as UTF-8 text.

    Args:
        path: File path.
        index: Which frames, ASE-style (":" all, -1 last, "10:20"). A slice that selects no frame gives
            an empty list, as Python's slicing does.
        check: Validate every structure (elements, NaNs, overlapping atoms).

    Returns:
        A list of structures, positions in Å.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for a malformed file (naming the line where it can), a file that is not UTF-8 text, a file
            that holds no structures, or a structure that fails the checks (naming the frame).
        IndexError: if an integer ``index`` is out of range; the message gives the number of frames.
        TypeError: if ``index`` is not an int, a slice or a string.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No structure file at {path}.")
    index = _as_index(index)
    root, compression = get_compression(path.name)
    if os.path.splitext(root)[1].lower() in (".xyz", ".extxyz"):
        fmt = "extxyz"
    elif path.stat().st_size == 0:
        raise ValueError(f"{path} holds no structures: the file is empty.")
    else:
        try:
            fmt = filetype(str(path))
        except Exception as err:  # ASE's UnknownFileTypeError, or a read error while sniffing
            raise ValueError(f"Could not tell the structure format of {path}: {err}") from None

    n_frames, kwargs = None, {}
    source: str | io.StringIO = str(path)
    if fmt in _XYZ_FORMATS:
        text, parsed = _read_text(path, compression), {}
        n_frames = _scan_xyz(path, text, parsed)
        if n_frames == 0:
            raise ValueError(f"{path} holds no structures: the file is empty or holds only blank lines.")
        if isinstance(index, int) and not -n_frames <= index < n_frames:
            raise _out_of_range(path, index, n_frames)
        source = io.StringIO(text)
        # Each frame gets its own copy: ASE takes keys out of the info it is given.
        kwargs["properties_parser"] = lambda line: (
            copy.deepcopy(parsed[line]) if line in parsed else key_val_str_to_dict(line)
        )
    # An int becomes a one-frame slice, so ASE answers an out-of-range frame with an empty list (checked
    # below) instead of clamping a negative index or stopping its iterator.
    frames = index if isinstance(index, slice) else slice(index, index + 1 or None)
    images = _read(path, source, fmt, frames, **kwargs)
    if not images and n_frames is None and (isinstance(index, int) or index == slice(None)):
        n_frames = 0 if index == slice(None) else len(_read(path, source, fmt, slice(None)))
        if n_frames == 0:
            raise ValueError(f"{path} holds no structures.")
    if not images and isinstance(index, int):
        raise _out_of_range(path, index, n_frames)
    if check:
        for i, a in enumerate(images):
            check_atoms(a, name=f"{path.name} frame {i}")
    return images


def write_images(path: str | Path, images: list[Atoms] | Atoms, append: bool = False) -> Path:
    """Write structures as extxyz atomically (temporary file, then rename).

    With ``append=True`` the new frames are added after the existing ones, and the existing ones survive
    an interruption at any point.

    Args:
        path: Destination file; its folder is created if missing.
        images: One structure or several, positions in Å.
        append: Keep the frames already in ``path`` and add these after them.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [images] if isinstance(images, Atoms) else list(images)
    tmp = path.with_name(path.name + ".tmp")
    old = path.read_bytes() if append and path.exists() else b""
    with open(tmp, "wb") as fh:
        fh.write(old)
    ase.io.write(tmp, images, format="extxyz", append=True)
    os.replace(tmp, path)
    return path


def as_atoms(structure, name: str = "structure") -> Atoms:
    """An :class:`ase.Atoms` from an Atoms or a structure file (xyz, extxyz, ...; its first frame), checked.

    Args:
        structure: An :class:`ase.Atoms` (positions in Å) or the path of a structure file.
        name: How to call an Atoms in error messages (a file is named by its path).

    Returns:
        The structure.

    Raises:
        ValueError: for a malformed file, a file that holds no structures, or a structure that fails
            :func:`~mlipviz.geometry.check_atoms`.
        FileNotFoundError: if a path does not exist.
    """
    if isinstance(structure, (str, Path)):
        return load_images(structure, index=0)[0]
    return check_atoms(structure, name)
