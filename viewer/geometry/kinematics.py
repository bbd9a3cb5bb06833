"""Forward kinematics for robot arms: one code path for URDF robots and the layout's own arms.

::

    URDF file --load_urdf--> UrdfRobot --.
                                          +--> UrdfJoint list --> KinematicChain --forward_batch--> link frames
    layout joint list (degrees) ---------'                          clamp, interpolate, unit conversion

A :class:`KinematicChain` is a tree of links joined by revolute, continuous, prismatic
and fixed joints, ordered root first, so every link's frame is its parent's frame times
the joint's fixed origin times the joint's motion. :meth:`KinematicChain.forward_batch`
evaluates that for many joint vectors at once with numpy (a loop over links, none over
samples): telemetry for several arms, or a trajectory, costs one call per frame.

Units. Inside the chain everything is SI: metres and **radians** (the URDF's units), so
``q``, ``lower``, ``upper`` and ``velocity`` are radians (rad/s) for revolute and continuous
joints and metres (m/s) for prismatic ones. Layouts and the joint-list form use
**degrees**, like the rest of the layout: convert with :meth:`KinematicChain.from_layout_units`
and :meth:`KinematicChain.to_layout_units`.

The built-in six-axis arm of :func:`viewer.geometry.plant.robot_link_transforms` is
expressed as a joint list (:func:`arm6_joint_list`), so the same code moves it.

Qt-free and VTK-free: numpy (and trimesh, through the mesh library, for visuals).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from viewer.geometry.mesh_library import MeshData, MeshLibrary
from viewer.geometry.parts import ROBOT_HOME_DEG, Part
from viewer.geometry.urdf import (
    JOINT_TYPES,
    MOVABLE_JOINT_TYPES,
    UrdfJoint,
    UrdfRobot,
    UrdfVisual,
    load_urdf,
    order_links,
    origin_matrix,
)
from viewer.model.errors import MeshError

# The links of the built-in arm whose frames robot_link_transforms returns, in its order
# (the chain has one more, "wrist_roll", between the two wrist joints).
ARM6_FRAME_LINKS = ("base", "turret", "upper_arm", "forearm", "wrist", "flange")

_FIXED, _ROTATE, _TRANSLATE = 0, 1, 2


class KinematicsError(ValueError):
    """A joint list (or joint vector) that cannot make a kinematic chain; the message says where and why."""


def _skew(axis: np.ndarray) -> np.ndarray:
    x, y, z = axis
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


class KinematicChain:
    """A robot's links and joints, ordered root first, with vectorised forward kinematics.

    Build one with :meth:`from_urdf` or :meth:`from_joint_list` (or :func:`arm6_chain`);
    the constructor takes joints already in SI units.

    Parameters
    ----------
    name
        The robot's name.
    links
        Every link name (any order; the chain orders them from the root).
    joints
        The joints in SI units (metres, radians). Mimic joints follow their target and are
        not part of the joint vector.
    end_effector
        The link reported as the end effector; by default the deepest leaf, preferring one
        attached by a fixed joint (a tool or TCP frame rather than a gripper finger), then
        the first in ``links`` order.
    home
        The joint vector shown before any telemetry (radians/metres); by default zeros
        moved into the limits.

    Attributes
    ----------
    link_names
        Links in topological order; index 0 is the root, whose frame is the identity.
    parents
        Parent link index of each link (-1 for the root).
    joint_names, joint_types
        The joint vector's entries: movable, non-mimic joints in the order given (the URDF's order).
    lower, upper, velocity
        Limits per joint vector entry, radians (rad/s) or metres (m/s); ``-inf``/``inf`` when unlimited.
    angular
        True where an entry is an angle (revolute, continuous), false for prismatic.
    """

    def __init__(
        self,
        name: str,
        links: Sequence[str],
        joints: Sequence[UrdfJoint],
        *,
        end_effector: str | None = None,
        home: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        self.name = name
        if len(set(links)) != len(links):
            raise KinematicsError("two links have the same name")
        names = [j.name for j in joints]
        if len(set(names)) != len(names):
            raise KinematicsError("two joints have the same name")
        for joint in joints:
            if joint.type not in JOINT_TYPES:
                raise KinematicsError(f"joint {joint.name!r}: unknown type {joint.type!r}")
        try:
            _, ordered = order_links(list(links), [(j.name, j.parent, j.child) for j in joints])
        except ValueError as exc:
            raise KinematicsError(str(exc)) from None
        self.link_names: tuple[str, ...] = tuple(ordered)
        index = {link: i for i, link in enumerate(ordered)}
        by_child = {j.child: j for j in joints}

        actuated = [j for j in joints if j.type in MOVABLE_JOINT_TYPES and j.mimic is None]
        q_index = {j.name: i for i, j in enumerate(actuated)}
        self.joint_names: tuple[str, ...] = tuple(j.name for j in actuated)
        self.joint_types: tuple[str, ...] = tuple(j.type for j in actuated)
        self.lower = np.array([j.lower if j.type != "continuous" else -np.inf for j in actuated], dtype=float)
        self.upper = np.array([j.upper if j.type != "continuous" else np.inf for j in actuated], dtype=float)
        self.velocity = np.array([j.velocity for j in actuated], dtype=float)
        self.angular = np.array([j.type != "prismatic" for j in actuated], dtype=bool)
        self._continuous = np.array([j.type == "continuous" for j in actuated], dtype=bool)

        n = len(ordered)
        self.parents = np.full(n, -1, dtype=np.int64)
        self.link_joint_names: tuple[str | None, ...] = tuple(
            by_child[link].name if link in by_child else None for link in ordered)
        # Per link: fixed origin, motion kind, unit axis, source entry of q, and mimic factor/offset.
        self._origins = np.tile(np.eye(4), (n, 1, 1))
        self._kinds = np.zeros(n, dtype=np.int64)
        self._axes = np.zeros((n, 3))
        self._skews = np.zeros((n, 3, 3))
        self._sources = np.full(n, -1, dtype=np.int64)
        self._factors = np.ones(n)
        self._offsets = np.zeros(n)
        for i, link in enumerate(ordered[1:], start=1):
            joint = by_child[link]
            self.parents[i] = index[joint.parent]
            self._origins[i] = origin_matrix(joint.xyz, joint.rpy)
            if joint.type == "fixed":
                continue
            axis = np.asarray(joint.axis, dtype=float)
            norm = float(np.linalg.norm(axis))
            if not norm > 1e-12:
                raise KinematicsError(f"joint {joint.name!r}: a {joint.type} joint needs a non-zero axis")
            self._axes[i] = axis / norm
            self._skews[i] = _skew(self._axes[i])
            self._kinds[i] = _TRANSLATE if joint.type == "prismatic" else _ROTATE
            if joint.mimic is None:
                self._sources[i] = q_index[joint.name]
            else:
                if joint.mimic.joint not in q_index:
                    raise KinematicsError(f"joint {joint.name!r} mimics {joint.mimic.joint!r}, which is not a "
                                          "movable, non-mimic joint")
                self._sources[i] = q_index[joint.mimic.joint]
                self._factors[i] = joint.mimic.multiplier
                self._offsets[i] = joint.mimic.offset

        if end_effector is None:
            end_effector = self._default_end_effector(list(links), by_child)
        elif end_effector not in index:
            raise KinematicsError(f"end effector {end_effector!r} is not a link of {name!r}")
        self.end_effector: str = end_effector
        self.end_effector_index: int = index[end_effector]

        if home is None:
            self.home = np.clip(np.zeros(self.n_joints), self.lower, self.upper)
        else:
            self.home = self._check_home(np.asarray(home, dtype=float))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_urdf(cls, robot: UrdfRobot | Path | str, *, end_effector: str | None = None) -> KinematicChain:
        """The chain of a URDF robot (a :class:`~viewer.geometry.urdf.UrdfRobot` or a file to load).

        A file is loaded with ``check_meshes=False``: kinematics need no meshes (paths are
        still confined to the URDF's folder). The joint vector follows the file's joint order.
        """
        if not isinstance(robot, UrdfRobot):
            robot = load_urdf(robot, check_meshes=False)
        return cls(robot.name, [link.name for link in robot.links], robot.joints, end_effector=end_effector)

    @classmethod
    def from_joint_list(
        cls,
        joints: Sequence[Mapping[str, Any]],
        *,
        name: str = "arm",
        base: str = "base",
        end_effector: str | None = None,
        home_deg: Sequence[float] | None = None,
    ) -> KinematicChain:
        """A chain from the layout's joint-list form (**degrees**, metres).

        Each joint is a mapping::

            {"name": "j2", "type": "revolute",          # revolute | continuous | prismatic | fixed
             "xyz": [0, 0, 0.3], "rpy": [0, 0, 0],      # origin in the parent link, metres / degrees
             "axis": [0, 1, 0],                         # default [0, 0, 1]
             "limits": [-135, 135],                     # degrees (metres if prismatic); revolute and
                                                        # prismatic need them
             "velocity": 150,                           # optional, deg/s (m/s if prismatic)
             "child": "upper_arm",                      # optional link name, default "<name>_link"
             "parent": "turret"}                        # optional, default the previous joint's child

        Parameters
        ----------
        joints
            The joints, base first; without ``parent`` they form a serial chain.
        name
            The robot's name.
        base
            Name of the root link.
        end_effector
            See :class:`KinematicChain`.
        home_deg
            Joint vector shown before telemetry, in degrees (metres if prismatic).

        Raises
        ------
        KinematicsError
            With the joint's index and field (``joints[2].axis: ...``).
        """
        if isinstance(joints, (str, bytes)) or not isinstance(joints, Sequence):
            raise KinematicsError("joints: expected a list of joint objects")
        specs: list[UrdfJoint] = []
        links = [base]
        previous = base
        for k, raw in enumerate(joints):
            where = f"joints[{k}]"
            if not isinstance(raw, Mapping):
                raise KinematicsError(f"{where}: expected an object, found {type(raw).__name__}")
            unknown = set(raw) - {"name", "type", "xyz", "rpy", "axis", "limits", "velocity", "child", "parent"}
            if unknown:
                raise KinematicsError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
            joint_name = raw.get("name", f"joint{k + 1}")
            kind = raw.get("type", "revolute")
            if not isinstance(joint_name, str) or not joint_name:
                raise KinematicsError(f"{where}.name: expected a non-empty string")
            if kind not in JOINT_TYPES:
                raise KinematicsError(f"{where}.type: unknown joint type {kind!r} "
                                      f"(one of {', '.join(JOINT_TYPES)})")
            xyz = _vector(raw.get("xyz", (0, 0, 0)), f"{where}.xyz")
            rpy = tuple(math.radians(a) for a in _vector(raw.get("rpy", (0, 0, 0)), f"{where}.rpy"))
            child = raw.get("child", f"{joint_name}_link")
            parent = raw.get("parent", previous)
            for field, value in (("child", child), ("parent", parent)):
                if not isinstance(value, str) or not value:
                    raise KinematicsError(f"{where}.{field}: expected a link name")
            spec = UrdfJoint(joint_name, kind, parent, child, xyz, (rpy[0], rpy[1], rpy[2]))
            if kind in MOVABLE_JOINT_TYPES:
                axis = _vector(raw.get("axis", (0, 0, 1)), f"{where}.axis")
                if math.hypot(*axis) < 1e-12:
                    raise KinematicsError(f"{where}.axis: must not be zero")
                scale = math.radians(1.0) if kind != "prismatic" else 1.0  # layout degrees -> radians
                lower, upper = -math.inf, math.inf
                if kind != "continuous":
                    limits = raw.get("limits")
                    if limits is None:
                        raise KinematicsError(f"{where}.limits: a {kind} joint needs [lower, upper] "
                                              "(use type 'continuous' for an unlimited revolute joint)")
                    lo, hi = _vector(limits, f"{where}.limits", size=2)
                    if lo > hi:
                        raise KinematicsError(f"{where}.limits: lower {lo} is above upper {hi}")
                    lower, upper = lo * scale, hi * scale
                velocity = raw.get("velocity")
                if velocity is not None and (not _is_number(velocity) or velocity < 0):
                    raise KinematicsError(f"{where}.velocity: expected a non-negative number, found {velocity!r}")
                spec = UrdfJoint(joint_name, kind, parent, child, xyz, spec.rpy, axis, lower, upper,
                                 math.inf if velocity is None else float(velocity) * scale)
            specs.append(spec)
            if child in links:
                raise KinematicsError(f"{where}.child: link {child!r} is already used")
            links.append(child)
            previous = child
        chain = cls(name, links, specs, end_effector=end_effector)
        if home_deg is not None:
            chain.home = chain._check_home(chain.from_layout_units(home_deg))
        return chain

    def _default_end_effector(self, file_order: list[str], by_child: dict[str, UrdfJoint]) -> str:
        depth = np.zeros(self.n_links, dtype=np.int64)
        for i in range(1, self.n_links):
            depth[i] = depth[self.parents[i]] + 1
        has_child = np.zeros(self.n_links, dtype=bool)
        has_child[self.parents[self.parents >= 0]] = True
        position = {link: k for k, link in enumerate(file_order)}

        def rank(i: int) -> tuple[int, int, int]:
            link = self.link_names[i]
            fixed = link in by_child and by_child[link].type == "fixed"
            return (-int(depth[i]), 0 if fixed else 1, position[link])

        leaves = [i for i in range(self.n_links) if not has_child[i]]
        return self.link_names[min(leaves, key=rank)]

    # ------------------------------------------------------------------ facts

    @property
    def n_links(self) -> int:
        """Number of links, the root included."""
        return len(self.link_names)

    @property
    def n_joints(self) -> int:
        """Length of the joint vector (movable, non-mimic joints)."""
        return len(self.joint_names)

    def link_index(self, name: str) -> int:
        """Index of a link in :attr:`link_names` (``KeyError`` if unknown)."""
        try:
            return self.link_names.index(name)
        except ValueError:
            raise KeyError(name) from None

    def link_indices(self, names: Sequence[str]) -> np.ndarray:
        """Indices of several links, e.g. ``frames[:, chain.link_indices(ARM6_FRAME_LINKS)]``."""
        return np.array([self.link_index(n) for n in names], dtype=np.int64)

    def from_layout_units(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Layout units (degrees; metres for prismatic) to the chain's (radians; metres).

        Works on one vector ``(n_joints,)`` or a batch ``(..., n_joints)``.
        """
        values = np.asarray(values, dtype=float)
        return np.where(self.angular, np.radians(values), values)

    def to_layout_units(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """The chain's units (radians; metres for prismatic) to layout units (degrees; metres)."""
        q = np.asarray(q, dtype=float)
        return np.where(self.angular, np.degrees(q), q)

    # ------------------------------------------------------------------ motion

    def _check_q(self, q: np.ndarray, *, batch: bool) -> np.ndarray:
        want = 2 if batch else 1
        if q.ndim != want or q.shape[-1] != self.n_joints:
            shape = "(N, n_joints)" if batch else "(n_joints,)"
            raise KinematicsError(f"{self.name}: expected joint values of shape {shape} with n_joints = "
                                  f"{self.n_joints} ({', '.join(self.joint_names)}), got shape {q.shape}")
        return q

    def _check_home(self, home: np.ndarray) -> np.ndarray:
        home = self._check_q(home, batch=False)
        _, outside = self.clamp(home)
        if outside.any():
            names = ", ".join(n for n, bad in zip(self.joint_names, outside, strict=True) if bad)
            raise KinematicsError(f"{self.name}: the home pose is outside the limits of {names}")
        return home.copy()

    def clamp(self, q: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint values moved into their limits, and which were outside.

        Parameters
        ----------
        q
            One joint vector ``(n_joints,)`` or a batch ``(..., n_joints)``, radians/metres.

        Returns
        -------
        q_clamped, out_of_limits
            ``q`` with each value clipped to ``[lower, upper]``, and a boolean mask of the
            same shape, true where a value was changed. NaN (a broken sample) becomes 0 moved
            into the limits and is flagged; so is an infinite value on an unlimited joint.
        """
        q = np.asarray(q, dtype=float)
        if q.shape[-1:] != (self.n_joints,):
            raise KinematicsError(f"{self.name}: expected {self.n_joints} joint values, got shape {q.shape}")
        clamped = np.clip(np.where(np.isnan(q), 0.0, q), self.lower, self.upper)
        clamped = np.where(np.isfinite(clamped), clamped, 0.0)
        return clamped, ~(clamped == q)  # NaN != anything, so NaN inputs are flagged too

    def interpolate(
        self,
        t: float,
        t0: float,
        q0: Sequence[float] | np.ndarray,
        t1: float,
        q1: Sequence[float] | np.ndarray,
    ) -> np.ndarray:
        """The joint vector at time ``t`` between samples ``(t0, q0)`` and ``(t1, q1)``.

        Linear in joint space, with the parameter clamped to [0, 1]: before ``t0`` the arm
        holds ``q0``, after ``t1`` it holds ``q1`` (no extrapolation past the newest
        sample). Continuous joints turn the short way round (350° to 10° passes 0°, not 180°).
        ``t1 <= t0`` gives ``q1``. Works for one vector or a batch with matching shapes;
        pass clamped samples and the result stays within the limits.
        """
        q0 = np.asarray(q0, dtype=float)
        q1 = np.asarray(q1, dtype=float)
        if t1 <= t0:
            return q1.copy()
        s = min(1.0, max(0.0, (t - t0) / (t1 - t0)))
        delta = q1 - q0
        wrapped = (delta + np.pi) % (2 * np.pi) - np.pi
        delta = np.where(self._continuous, wrapped, delta)
        return q0 + s * delta

    def forward(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """Link frames for one joint vector.

        Parameters
        ----------
        q
            ``(n_joints,)`` radians/metres, in :attr:`joint_names` order. Not clamped here:
            call :meth:`clamp` first for telemetry.

        Returns
        -------
        np.ndarray
            ``(n_links, 4, 4)``: each link's frame in the root link's frame, in
            :attr:`link_names` order.
        """
        q = self._check_q(np.asarray(q, dtype=float), batch=False)
        return self.forward_batch(q[None, :])[0]

    def forward_batch(self, q: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """Link frames for many joint vectors at once (no Python loop over samples).

        Parameters
        ----------
        q
            ``(N, n_joints)`` radians/metres.

        Returns
        -------
        np.ndarray
            ``(N, n_links, 4, 4)`` float64 frames in the root link's frame.
        """
        q = self._check_q(np.asarray(q, dtype=float), batch=True)
        count = q.shape[0]
        frames = np.empty((count, self.n_links, 4, 4))
        frames[:, 0] = np.eye(4)
        eye3 = np.eye(3)
        for i in range(1, self.n_links):
            # parent frame · fixed origin, then the joint's own motion on the right
            placed = frames[:, self.parents[i]] @ self._origins[i]
            kind = self._kinds[i]
            if kind == _FIXED:
                frames[:, i] = placed
                continue
            value = q[:, self._sources[i]] * self._factors[i] + self._offsets[i]
            if kind == _ROTATE:
                # Rodrigues: R = I + sin(a) K + (1 - cos(a)) K², with K the axis's cross-product matrix
                skew = self._skews[i]
                rotation = (eye3 + np.sin(value)[:, None, None] * skew
                            + (1.0 - np.cos(value))[:, None, None] * (skew @ skew))
                frames[:, i, :3, :3] = placed[:, :3, :3] @ rotation
                frames[:, i, :, 3] = placed[:, :, 3]
                frames[:, i, 3, :3] = 0.0
            else:
                frames[:, i] = placed
                frames[:, i, :3, 3] += placed[:, :3, :3] @ self._axes[i] * value[:, None]
        return frames

    def end_effector_pose(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """The end-effector link's 4x4 frame for one joint vector (root link frame)."""
        return self.forward(q)[self.end_effector_index]


# --------------------------------------------------------------------------- helpers


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _vector(value: object, where: str, size: int = 3) -> tuple[float, ...]:
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != size
            or not all(_is_number(v) for v in value)):
        raise KinematicsError(f"{where}: expected {size} finite numbers, found {value!r}")
    return tuple(float(v) for v in value)


# --------------------------------------------------------------------------- the built-in arm


def arm6_joint_list(reach: float = 1.6) -> list[dict[str, Any]]:
    """The built-in six-axis arm ('arm6') in the layout's joint-list form (degrees, metres).

    Same link frames as :func:`viewer.geometry.plant.robot_link_transforms` at the same
    joint angles. The limits are plausible for a 6-axis industrial arm of this size; they
    are this project's choice, not a real robot's data sheet.
    """
    k = reach / 1.6
    upper, fore = 0.75 * k, 0.7 * k
    return [
        {"name": "j1", "type": "revolute", "xyz": [0, 0, 0.45], "axis": [0, 0, 1], "limits": [-185, 185],
         "velocity": 156, "child": "turret"},
        {"name": "j2", "type": "revolute", "xyz": [0, 0, 0.3], "axis": [0, 1, 0], "limits": [-140, 140],
         "velocity": 156, "child": "upper_arm"},
        {"name": "j3", "type": "revolute", "xyz": [0, 0, upper], "axis": [0, 1, 0], "limits": [-150, 150],
         "velocity": 156, "child": "forearm"},
        # j4 and j5 meet in one point: the link between them has no length of its own.
        {"name": "j4", "type": "revolute", "xyz": [fore, 0, 0], "axis": [1, 0, 0], "limits": [-350, 350],
         "velocity": 330, "child": "wrist_roll"},
        {"name": "j5", "type": "revolute", "xyz": [0, 0, 0], "axis": [0, 1, 0], "limits": [-125, 125],
         "velocity": 330, "child": "wrist"},
        {"name": "j6", "type": "revolute", "xyz": [0, 0, 0], "axis": [1, 0, 0], "limits": [-350, 350],
         "velocity": 615, "child": "flange"},
    ]


def arm6_chain(reach: float = 1.6) -> KinematicChain:
    """The built-in six-axis arm as a :class:`KinematicChain`; home is the layout's default pose.

    Its links are ``base, turret, upper_arm, forearm, wrist_roll, wrist, flange``; the six
    frames :func:`~viewer.geometry.plant.robot_link_transforms` returns (and the ``link``
    numbers of :func:`~viewer.geometry.plant.robot_parts`) are those of
    :data:`ARM6_FRAME_LINKS`, in that order.
    """
    return KinematicChain.from_joint_list(arm6_joint_list(reach), name="arm6", base="base", end_effector="flange",
                                          home_deg=ROBOT_HOME_DEG)


# --------------------------------------------------------------------------- URDF visuals


@lru_cache(maxsize=128)
def _centred_primitive(kind: str, a: float, b: float = 0.0, c: float = 0.0) -> MeshData:
    """URDF primitives are centred on their origin (unlike the layout's, which stand on z = 0)."""
    import trimesh

    if kind == "box":
        mesh = trimesh.creation.box(extents=(a, b, c))
    elif kind == "cylinder":
        mesh = trimesh.creation.cylinder(radius=a, height=b, sections=16)
    else:
        mesh = trimesh.creation.icosphere(subdivisions=1, radius=a)
    return MeshData(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32))


def _visual_mesh(visual: UrdfVisual, library: MeshLibrary) -> MeshData:
    if visual.geometry == "mesh" and visual.mesh_path is not None:
        return library.load(visual.mesh_path)
    if visual.geometry == "box" and visual.size is not None:
        return _centred_primitive("box", *visual.size)
    if visual.geometry == "cylinder" and visual.radius and visual.length:
        return _centred_primitive("cylinder", visual.radius, visual.length)
    if visual.geometry == "sphere" and visual.radius:
        return _centred_primitive("sphere", visual.radius)
    raise MeshError(f"visual {visual.geometry!r} lacks its dimensions or file")  # the loader never makes one


def urdf_visual_parts(
    robot: UrdfRobot,
    chain: KinematicChain,
    library: MeshLibrary,
    q: Sequence[float] | np.ndarray | None = None,
) -> list[Part]:
    """The robot's visuals as :class:`~viewer.geometry.plant.Part` objects at joint vector ``q``.

    Each part's ``transform`` is link frame · visual origin · mesh scale, and its ``link``
    is the chain's link index, so a scene can re-pose a part with
    ``forward(q_new)[link] @ inv(forward(q)[link]) @ transform``. Meshes load through
    ``library`` (size limits, cache). The visual's colour becomes the part's shade
    (brightness, from the colour's luminance) so dark and light parts stay told apart
    in the component's colour; the rgba itself stays on :class:`~viewer.geometry.urdf.UrdfVisual`.

    Parameters
    ----------
    robot, chain
        The parsed robot (loaded with ``check_meshes=True``) and its chain.
    library
        Loads and caches the meshes.
    q
        Joint vector (radians/metres); ``chain.home`` by default.

    Raises
    ------
    viewer.model.errors.MeshError
        A mesh that cannot be read or is over the library's limits.
    """
    frames = chain.forward(chain.home if q is None else q)
    parts = []
    for link in robot.links:
        frame = frames[chain.link_index(link.name)]
        for number, visual in enumerate(link.visuals, 1):
            try:
                mesh = _visual_mesh(visual, library)
            except MeshError as exc:  # which robot, link and visual: a published arm has dozens of meshes
                where = Path(robot.source).name if getattr(robot, "source", None) else robot.name
                raise MeshError(f"{where}: link {link.name!r}, visual {number} of {len(link.visuals)}"
                                f"{f' ({visual.mesh_filename})' if visual.mesh_filename else ''}: {exc}") from None
            local = visual.origin @ np.diag([*visual.scale, 1.0])
            if np.linalg.det(local[:3, :3]) < 0:  # a mirroring scale turns faces inside out; keep them outward
                mesh = MeshData(mesh.vertices, np.ascontiguousarray(mesh.faces[:, ::-1]), mesh.two_sided)
            shade = 1.0
            if visual.rgba is not None:
                r, g, b, _ = visual.rgba
                shade = 0.6 + 0.6 * (0.2126 * r + 0.7152 * g + 0.0722 * b)
            parts.append(Part(mesh, frame @ local, shade=shade, link=chain.link_index(link.name)))
    return parts
