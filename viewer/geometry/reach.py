"""A robot's reach from its own kinematics (what the layout checks, the editor's dome and the details use)."""

from __future__ import annotations

import functools

import numpy as np

from viewer.geometry.kinematics import ARM6_FRAME_LINKS, arm6_chain
from viewer.geometry.parts import ROBOT_HOME_DEG
from viewer.geometry.plant import sampled_reach


def robot_reach(comp: object, geometry: object | None = None) -> float | None:
    """A robot's horizontal reach: ``robot.reach`` when the layout states it (a data-sheet value), else what
    its own kinematics give (:attr:`~viewer.geometry.plant.RobotRig.reach`, from the built plant); None when
    neither is known (no check)."""
    section = comp.section("robot")  # type: ignore[attr-defined]
    if "reach" in section:
        return float(section["reach"])
    rigs = getattr(geometry, "rigs", None) or {}
    rig = rigs.get(comp.id)  # type: ignore[attr-defined]
    if rig is not None:
        try:
            return rig.reach
        except Exception:  # a chain that cannot be sampled: no reach check rather than a wrong one
            return None
    if "urdf" in section or "chain" in section:
        return None  # its kinematics are in a file or a chain this call was not given: no guess
    return _arm6_reach()


def robot_reaches(geometry: object) -> dict[str, float]:
    """The reach of every robot the built plant can pose (``geometry.rigs``)."""
    out = {}
    for component_id, rig in (getattr(geometry, "rigs", None) or {}).items():
        try:
            out[component_id] = rig.reach
        except Exception:  # a chain that cannot be sampled has no reach check
            continue
    return out


@functools.lru_cache(maxsize=1)
def _arm6_reach() -> float:
    """The built-in arm's reach without a built plant (its frames only; the parts add a few centimetres)."""
    chain = arm6_chain()
    links = chain.link_indices(ARM6_FRAME_LINKS)
    return sampled_reach(chain, links, np.zeros((1, 3)), np.zeros(1, dtype=int), np.radians(ROBOT_HOME_DEG))


