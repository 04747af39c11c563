"""nglview's replay archive, kept consistent when a view's components are replaced.

nglview keeps every message it sent the front end in ``NGLWidget._ngl_msg_archive`` and replays them when the widget
is drawn afresh (an embedded page, a reloaded notebook). Widgets that redraw one view in place
(:func:`mlipviz.views.draw.draw_structure` with ``replace=True``) remove components; this module drops the messages
that would then address components that no longer exist.
"""

from __future__ import annotations

__all__ = ["prune_archive"]


#: nglview message targets that address a component; once it is removed they address nothing.
_COMPONENT_TARGETS = ("compList", "Representation")
#: nglview messages that add a component besides ``loadFile``.
_COMPONENT_SHAPES = ("addShape", "addBuffer")


def _message_kind(msg: dict) -> tuple:
    """What an nglview message does: method, target and the names of its parameters."""
    return msg.get("methodName"), msg.get("target"), tuple(sorted(msg.get("kwargs") or {}))


def prune_archive(view, shift: int = 0, autoview: int | None = None) -> None:
    """Drop messages about removed components from nglview's replay archive.

    nglview keeps every message in ``_ngl_msg_archive`` and replays it when the widget is drawn afresh (an
    embedded page); on removing a component it drops that component's ``loadFile`` but keeps its representation
    messages, which would then address a component that no longer exists. Everything after the newest
    ``loadFile`` is kept, and before it only stage-wide messages (camera type, background), the newest of each
    kind. The kept messages addressed their component while the ``shift`` removed ones still stood before it:
    their component index drops by ``shift``. ``autoview``: the index (after the removal) of a component to fit
    in a replay, when the live view kept its camera.
    """
    archive = list(view._ngl_msg_archive)
    loads = [k for k, m in enumerate(archive) if m.get("methodName") == "loadFile"]
    if not loads:
        return
    tail = [{**m, "component_index": m["component_index"] - shift} if shift and "component_index" in m else m
            for m in archive[loads[-1]:]]
    if autoview is not None:
        tail.append(view._get_remote_call_msg("autoView", target="compList", args=["*", 0],
                                              kwargs={"component_index": autoview}))
    kept, seen = [], {_message_kind(m) for m in tail}
    for m in reversed(archive[:loads[-1]]):
        if m.get("target") in _COMPONENT_TARGETS or m.get("methodName") in _COMPONENT_SHAPES:
            continue
        if _message_kind(m) not in seen:
            seen.add(_message_kind(m))
            kept.append(m)
    view._ngl_msg_archive = kept[::-1] + tail
