"""URDF robot descriptions: a safe, strict reader for links, visuals and joints.

A URDF file arrives from outside (a robot vendor, a colleague's workspace), so it is
treated as untrusted input:

- it is parsed with :mod:`defusedxml`, which refuses entity declarations (billion
  laughs, external entities) instead of expanding them;
- nothing in it is executed or fetched: ``xacro`` macros are refused (run ``xacro``
  first), URLs are refused, and only mesh paths are followed;
- mesh filenames (relative paths, ``package://NAME/...`` and the non-standard
  ``package://...`` some exporters write) are resolved inside the URDF's own folder,
  and a path that leaves it (``..``, an absolute path, a link pointing outside) is
  refused, the same confinement rule as :meth:`~viewer.geometry.mesh_library.MeshLibrary.resolve`
  applies to layouts.

Units are the URDF's own: metres and **radians**. (Layouts use degrees; the
conversion happens in :mod:`viewer.geometry.kinematics`.) The result is plain frozen
data (:class:`UrdfRobot`); :class:`~viewer.geometry.kinematics.KinematicChain` turns it
into forward kinematics. Only what the viewer draws and moves is read: visual
geometry, materials and joints; inertia, collision and transmission elements are ignored.
"""

from __future__ import annotations

import contextlib
import math
import xml.etree.ElementTree as StdET  # only for the ParseError type and Element annotations
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from viewer.geometry.mesh_library import SUPPORTED_SUFFIXES

MAX_URDF_BYTES = 16 * 1024 * 1024  # real descriptions are well under 1 MB; this keeps a bad file from eating memory
JOINT_TYPES = ("revolute", "continuous", "prismatic", "fixed")
KNOWN_UNSUPPORTED_JOINT_TYPES = ("floating", "planar")
MOVABLE_JOINT_TYPES = ("revolute", "continuous", "prismatic")
# xacro's namespace has moved (http://www.ros.org/wiki/xacro, then http://wiki.ros.org/xacro, https too):
# any namespace whose URI ends in "/xacro" is xacro's.
_XACRO_HINT = ("run xacro to produce a plain URDF first (xacro evaluates expressions, which the viewer "
               "never does with what it reads): xacro robot.urdf.xacro > robot.urdf")


def _refuse_xacro(root: StdET.Element, source: Path | str | None) -> None:
    """A clear refusal for a xacro file: its elements (any of xacro's namespaces) or ``${...}`` uses."""
    for element in root.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag.startswith("{"):
            uri, _, local = tag[1:].partition("}")
            if uri.rstrip("/").endswith("/xacro") or uri == "xacro":
                raise UrdfError(f"unexpanded xacro element <xacro:{local}>; {_XACRO_HINT}", source=source)
        for name, value in element.attrib.items():
            if "${" in value or "$(" in value:
                raise UrdfError(f"unexpanded xacro expression {value[:60]!r} in <{tag} {name}=...>; {_XACRO_HINT}",
                                source=source)


class UrdfError(ValueError):
    """A URDF file that cannot be used, with *where* (file, element) and *why*.

    Parameters
    ----------
    why
        What is wrong and, where it helps, what to do about it.
    source
        The file (or ``"<string>"``) the problem was found in.
    where
        The element, e.g. ``"joint 'elbow'"`` or ``"link 'hand', visual 1"``.
    """

    def __init__(self, why: str, *, source: str = "", where: str = "") -> None:
        self.why = why
        self.source = source
        self.where = where
        prefix = ": ".join(p for p in (source, where) if p)
        super().__init__(f"{prefix}: {why}" if prefix else why)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class UrdfVisual:
    """One visual element of a link, in the link's frame (metres, radians).

    ``geometry`` is ``"mesh"``, ``"box"``, ``"cylinder"`` or ``"sphere"``; the fields that do not
    apply to it are ``None``. URDF primitives are centred on their origin (a cylinder along z).
    """

    geometry: str
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mesh_filename: str | None = None  # as written in the file
    mesh_path: Path | None = None  # resolved, inside the URDF's folder
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    size: tuple[float, float, float] | None = None  # box
    radius: float | None = None  # cylinder, sphere
    length: float | None = None  # cylinder
    material: str | None = None
    rgba: tuple[float, float, float, float] | None = None

    @property
    def origin(self) -> np.ndarray:
        """4x4 transform of the visual in its link's frame (scale not included)."""
        return origin_matrix(self.xyz, self.rpy)


@dataclass(frozen=True)
class UrdfLink:
    """A link: a name and its visuals (possibly none, e.g. a tool frame)."""

    name: str
    visuals: tuple[UrdfVisual, ...] = ()


@dataclass(frozen=True)
class UrdfMimic:
    """A joint that follows another: ``q = multiplier * q[joint] + offset``."""

    joint: str
    multiplier: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class UrdfJoint:
    """A joint between two links, as in the file (metres, radians).

    ``lower``/``upper`` are ``-inf``/``+inf`` for continuous and fixed joints; ``velocity`` is
    ``inf`` when the file gives none.
    """

    name: str
    type: str
    parent: str
    child: str
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    lower: float = -math.inf
    upper: float = math.inf
    velocity: float = math.inf
    mimic: UrdfMimic | None = None

    @property
    def origin(self) -> np.ndarray:
        """4x4 transform from the parent link's frame to the joint frame at q = 0."""
        return origin_matrix(self.xyz, self.rpy)


@dataclass(frozen=True)
class UrdfRobot:
    """A parsed, checked robot: one tree of links joined by joints.

    ``links`` and ``joints`` keep the file's order; ``root`` is the one link that is no
    joint's child; ``source`` is the file read (``None`` for a string).
    """

    name: str
    links: tuple[UrdfLink, ...]
    joints: tuple[UrdfJoint, ...]
    root: str
    source: Path | None = None

    def link(self, name: str) -> UrdfLink:
        """The link called ``name`` (``KeyError`` if there is none)."""
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def joint(self, name: str) -> UrdfJoint:
        """The joint called ``name`` (``KeyError`` if there is none)."""
        for joint in self.joints:
            if joint.name == name:
                return joint
        raise KeyError(name)


# --------------------------------------------------------------------------- transforms


def rpy_matrix(rpy: Sequence[float]) -> np.ndarray:
    """3x3 rotation for URDF roll, pitch, yaw in radians: fixed axes x, then y, then z (R = Rz·Ry·Rx).

    The same convention as the layout's ``rotation`` (which is in degrees).
    """
    roll, pitch, yaw = (float(a) for a in rpy)
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def origin_matrix(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """4x4 transform of a URDF ``<origin xyz rpy>`` (metres, radians)."""
    m = np.eye(4)
    m[:3, :3] = rpy_matrix(rpy)
    m[:3, 3] = [float(v) for v in xyz]
    return m


# --------------------------------------------------------------------------- mesh paths


def _escape_problem(rel: str) -> str | None:
    """Why a relative path (``/`` separated) is refused before touching the disk, or ``None``."""
    if "://" in rel:
        return "only relative paths and package:// URIs are accepted, not other URLs"
    if rel.startswith("/") or PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        return "absolute paths are refused; give a path relative to the URDF file"
    depth = 0
    for part in rel.split("/"):
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            return "the path climbs out of the URDF's folder; keep meshes beside or below the URDF file"
    return None


def find_package(name: str, roots: Sequence[Path]) -> tuple[Path, Path] | None:
    """(package folder, the root it lies in) of the ROS package ``name``: a folder holding a ``package.xml``
    whose ``<name>`` is ``name``, at a root, directly below one, or two levels below (a workspace's
    ``src/``); the first root that has it wins. Nothing outside the roots is looked at."""
    for root in roots:
        try:
            root = Path(root).resolve()
        except (OSError, RuntimeError):
            continue
        candidates = [root, root / name]
        with contextlib.suppress(OSError):
            candidates += sorted(p.parent for p in root.glob("*/package.xml")) + \
                sorted(p.parent for p in root.glob("*/*/package.xml"))
        for folder in candidates:
            if _package_name(folder) == name and folder.resolve().is_relative_to(root):
                return folder.resolve(), root
    return None


def _package_name(folder: Path) -> str | None:
    manifest = folder / "package.xml"
    try:
        if not manifest.is_file() or manifest.stat().st_size > 1_000_000:
            return None
        root = SafeET.fromstring(manifest.read_bytes(), forbid_dtd=False, forbid_entities=True,
                                 forbid_external=True)
    except (OSError, DefusedXmlException, StdET.ParseError):
        return None
    element = root.find("name")
    return element.text.strip() if element is not None and element.text else None


def _resolve_in_package(filename: str, body: str, package_roots: Sequence[Path]) -> Path | None:
    """``package://NAME/rest`` through the package roots, confined to the root NAME was found in."""
    name, _, rest = body.strip("/").partition("/")
    if not name or not rest or _escape_problem(rest):
        return None
    found = find_package(name, package_roots)
    if found is None:
        return None
    folder, root = found
    target = (folder / rest).resolve()
    if not target.is_relative_to(root):
        raise UrdfError(f"mesh {filename!r} resolves outside the package root {root} (through a link?); refused")
    return target if target.is_file() else None


def resolve_mesh_filename(filename: str, urdf_dir: Path, *, must_exist: bool = True,
                          package_roots: Sequence[Path] = ()) -> Path:
    """The file a URDF ``<mesh filename>`` names, confined to the URDF's folder or a package root.

    Accepted forms are a relative path (``meshes/link_1.stl``), ``package://NAME/rest`` and the
    non-standard ``package://rest`` some exporters write. ``package://NAME/rest`` is looked for first in
    the ROS package ``NAME`` under ``package_roots`` (found by its ``package.xml``, see
    :func:`find_package`: the usual ``NAME/urdf/robot.urdf`` beside ``NAME/meshes/``), then as
    ``NAME/rest`` and as ``rest`` inside the URDF's folder.

    Parameters
    ----------
    filename
        The attribute as written.
    urdf_dir
        The folder of the URDF file; the resolved path must stay inside it.
    must_exist
        Also require an existing file in a format :class:`~viewer.geometry.mesh_library.MeshLibrary` reads.

    Returns
    -------
    Path
        The fully resolved path (links followed).

    Raises
    ------
    UrdfError
        Refused (URL, absolute path, climbing out of the folder, a link pointing outside),
        missing, or an unsupported format; the message says which.
    """
    text = filename.strip().replace("\\", "/")
    if not text:
        raise UrdfError("empty mesh filename")
    if text.lower().startswith("package://"):
        body = text[len("package://"):]
        in_package = _resolve_in_package(filename, body, package_roots) if package_roots else None
        if in_package is not None:
            if must_exist and in_package.suffix.lower() not in SUPPORTED_SUFFIXES:
                kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
                raise UrdfError(f"mesh {filename!r}: unsupported mesh format {in_package.suffix!r} "
                                f"(supported: {kinds})")
            return in_package
        candidates = [body]
        if "/" in body.strip("/"):
            candidates.append(body.strip("/").split("/", 1)[1])  # package name stripped
    else:
        candidates = [text]
    why = _escape_problem(candidates[0])
    if why:
        raise UrdfError(f"mesh {filename!r}: {why}")
    candidates = [c for c in candidates if _escape_problem(c) is None]
    base = Path(urdf_dir).resolve()
    tried: list[Path] = []
    for rel in candidates:
        target = (base / rel).resolve()
        # Checked on the resolved path, so a symbolic link pointing outside is caught too.
        if not target.is_relative_to(base):
            raise UrdfError(f"mesh {filename!r} resolves outside the URDF's folder {base} (through a link?); "
                            "refused")
        tried.append(target)
        if not must_exist or target.is_file():
            break
    else:
        looked = ", ".join(str(p) for p in tried)
        hint = ""
        if text.lower().startswith("package://"):
            roots = ", ".join(str(r) for r in package_roots) or "none"
            hint = (f"; package roots searched: {roots} (name the folder that holds the package in the layout's "
                    "robot.packages)")
        raise UrdfError(f"mesh {filename!r}: file not found (looked for {looked}){hint}")
    if must_exist and target.suffix.lower() not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UrdfError(f"mesh {filename!r}: unsupported mesh format {target.suffix!r} (supported: {kinds}); "
                        "convert it to one of those")
    return target


# --------------------------------------------------------------------------- tree


def order_links(links: Sequence[str], joints: Sequence[tuple[str, str, str]]) -> tuple[str, list[str]]:
    """Check that joints join links into one tree and order it from the root.

    Parameters
    ----------
    links
        Link names (unique).
    joints
        ``(joint name, parent link, child link)`` for each joint.

    Returns
    -------
    root, ordered
        The root link and every link in topological order (each after its parent;
        siblings in the order of ``links``).

    Raises
    ------
    ValueError
        A joint naming a link that does not exist, a link that is the child of two
        joints, a cycle, or more than one root (no link or several without a parent).
    """
    known = set(links)
    parent_of: dict[str, str] = {}
    via: dict[str, str] = {}
    for name, parent, child in joints:
        if parent not in known:
            raise ValueError(f"joint {name!r}: parent link {parent!r} is not defined")
        if child not in known:
            raise ValueError(f"joint {name!r}: child link {child!r} is not defined")
        if child in parent_of:
            raise ValueError(f"link {child!r} is the child of two joints ({via[child]!r} and {name!r}); "
                             "a robot is a tree")
        parent_of[child] = parent
        via[child] = name
    roots = [link for link in links if link not in parent_of]
    children: dict[str, list[str]] = {link: [] for link in links}
    for link in links:  # in link order, so the ordering is stable and follows the file
        if link in parent_of:
            children[parent_of[link]].append(link)
    if len(roots) == 1:
        ordered = [roots[0]]
        for link in ordered:  # breadth-first; the list grows while it is walked
            ordered.extend(children[link])
        if len(ordered) == len(links):
            return roots[0], ordered
    if len(roots) > 1:
        shown = ", ".join(repr(r) for r in roots[:5]) + (", ..." if len(roots) > 5 else "")
        raise ValueError(f"{len(roots)} root links ({shown}); a robot is one tree: add joints that connect them")
    # No root, or links not reachable from the root: each has exactly one parent, so following
    # parents from an unreachable link must come back to a link already seen.
    reached = set(ordered) if roots else set()
    start = next(link for link in links if link not in reached)
    path = [start]
    while parent_of[path[-1]] not in path:
        path.append(parent_of[path[-1]])
    loop = path[path.index(parent_of[path[-1]]):]
    walk = [*loop, loop[0]][::-1]  # parent first: each link is followed by its child
    steps = [repr(walk[0])] + [f"-({via[child]})-> {child!r}" for child in walk[1:]]
    raise ValueError(f"joints form a cycle: {' '.join(steps)}")


# --------------------------------------------------------------------------- parsing

Vec3 = tuple[float, float, float]


def _numbers(text: str | None, what: str) -> list[float]:
    try:
        numbers = [float(v) for v in (text or "").split()]
    except ValueError:
        raise ValueError(f"{what} must be numbers separated by spaces, found {text!r}") from None
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{what} must be finite numbers, found {text!r}")
    return numbers


def _vec3(text: str | None, what: str, *, allow_single: bool = False) -> Vec3:
    numbers = _numbers(text, what)
    if allow_single and len(numbers) == 1:
        numbers = numbers * 3
    if len(numbers) != 3:
        raise ValueError(f"{what} must be three numbers, found {text!r}")
    return numbers[0], numbers[1], numbers[2]


def _float(text: str | None, what: str, default: float | None = None) -> float:
    if text is None:
        if default is None:
            raise ValueError(f"{what} is missing")
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, found {text!r}") from None
    if math.isnan(value):
        raise ValueError(f"{what} must be a number, found {text!r}")
    return value


def _positive(text: str | None, what: str) -> float:
    value = _float(text, what)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be positive, found {text!r}")
    return value


def _origin(element: StdET.Element) -> tuple[Vec3, Vec3]:
    origin = element.find("origin")
    if origin is None:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    return _vec3(origin.get("xyz", "0 0 0"), "origin xyz"), _vec3(origin.get("rpy", "0 0 0"), "origin rpy")


def _material_color(material: StdET.Element) -> tuple[float, float, float, float] | None:
    color = material.find("color")
    if color is None:
        return None
    rgba = _numbers(color.get("rgba"), "material color rgba")
    if len(rgba) != 4 or not all(0.0 <= c <= 1.0 for c in rgba):
        raise ValueError(f"material color rgba must be four numbers within 0..1, found {color.get('rgba')!r}")
    return rgba[0], rgba[1], rgba[2], rgba[3]


def _visual(element: StdET.Element, urdf_dir: Path,
            materials: dict[str, tuple[float, float, float, float] | None], check_meshes: bool,
            package_roots: Sequence[Path] = ()) -> UrdfVisual:
    xyz, rpy = _origin(element)
    material_name = rgba = None
    material = element.find("material")
    if material is not None:
        material_name = material.get("name") or None
        rgba = _material_color(material)
        if rgba is None and material_name is not None:
            rgba = materials.get(material_name)
    geometry = element.find("geometry")
    shapes = list(geometry) if geometry is not None else []
    if len(shapes) != 1:
        raise ValueError(f"<geometry> must hold exactly one shape, found {len(shapes)}")
    shape = shapes[0]
    visual = UrdfVisual("", xyz=xyz, rpy=rpy, material=material_name, rgba=rgba)
    if shape.tag == "mesh":
        filename = shape.get("filename")
        if not filename:
            raise ValueError("<mesh> has no filename")
        scale = _vec3(shape.get("scale", "1 1 1"), "mesh scale", allow_single=True)
        if 0.0 in scale:
            raise ValueError(f"mesh scale may not be zero, found {shape.get('scale')!r}")
        try:
            path = resolve_mesh_filename(filename, urdf_dir, must_exist=check_meshes, package_roots=package_roots)
        except UrdfError as exc:
            raise ValueError(exc.why) from None
        return replace(visual, geometry="mesh", mesh_filename=filename, mesh_path=path, scale=scale)
    if shape.tag == "box":
        size = _vec3(shape.get("size"), "box size")
        if not all(s > 0 for s in size):
            raise ValueError(f"box size must be positive, found {shape.get('size')!r}")
        return replace(visual, geometry="box", size=size)
    if shape.tag == "cylinder":
        return replace(visual, geometry="cylinder", radius=_positive(shape.get("radius"), "cylinder radius"),
                       length=_positive(shape.get("length"), "cylinder length"))
    if shape.tag == "sphere":
        return replace(visual, geometry="sphere", radius=_positive(shape.get("radius"), "sphere radius"))
    raise ValueError(f"unsupported geometry <{shape.tag}> (supported: mesh, box, cylinder, sphere)")


def _joint(element: StdET.Element, name: str) -> UrdfJoint:
    kind = element.get("type") or ""
    if kind in KNOWN_UNSUPPORTED_JOINT_TYPES:
        raise ValueError(f"joint type {kind!r} is not supported (supported: {', '.join(JOINT_TYPES)})")
    if kind not in JOINT_TYPES:
        raise ValueError(f"unknown joint type {kind!r} (URDF types supported here: {', '.join(JOINT_TYPES)})")
    ends: dict[str, str] = {}
    for end in ("parent", "child"):
        tag = element.find(end)
        link = tag.get("link") if tag is not None else None
        if not link:
            raise ValueError(f"<{end} link=...> is missing")
        ends[end] = link
    xyz, rpy = _origin(element)
    joint = UrdfJoint(name, kind, ends["parent"], ends["child"], xyz, rpy)
    if kind not in MOVABLE_JOINT_TYPES:
        return joint  # a fixed joint's axis and limits mean nothing (Panda writes axis="0 0 0" on one)
    axis_tag = element.find("axis")
    axis = _vec3(axis_tag.get("xyz"), "axis xyz") if axis_tag is not None else (1.0, 0.0, 0.0)  # URDF default
    norm = math.sqrt(sum(a * a for a in axis))
    if norm < 1e-12:
        raise ValueError(f"a {kind} joint needs a non-zero axis, found {axis}")
    axis = (axis[0] / norm, axis[1] / norm, axis[2] / norm)  # the spec asks for a unit axis; forgive the length
    lower, upper, velocity = -math.inf, math.inf, math.inf
    limit = element.find("limit")
    if kind != "continuous":
        if limit is None:
            raise ValueError(f"a {kind} joint needs <limit lower=... upper=... velocity=...>")
        lower = _float(limit.get("lower"), "limit lower", 0.0)  # the URDF defaults are 0
        upper = _float(limit.get("upper"), "limit upper", 0.0)
        if lower > upper:
            raise ValueError(f"limit lower {lower} is above upper {upper}")
    if limit is not None and limit.get("velocity") is not None:
        velocity = _float(limit.get("velocity"), "limit velocity")
        if velocity < 0:
            raise ValueError(f"limit velocity must not be negative, found {velocity}")
    mimic = None
    mimic_tag = element.find("mimic")
    if mimic_tag is not None:
        target = mimic_tag.get("joint")
        if not target:
            raise ValueError("<mimic> names no joint")
        mimic = UrdfMimic(target, _float(mimic_tag.get("multiplier"), "mimic multiplier", 1.0),
                          _float(mimic_tag.get("offset"), "mimic offset", 0.0))
    return replace(joint, axis=axis, lower=lower, upper=upper, velocity=velocity, mimic=mimic)


def parse_urdf(data: str | bytes, base_dir: Path, *, source: str = "<string>",
               check_meshes: bool = True, package_roots: Sequence[Path] = ()) -> UrdfRobot:
    """Parse URDF text whose mesh paths are relative to ``base_dir``.

    Parameters
    ----------
    data
        The XML document.
    base_dir
        The folder mesh filenames are resolved in (and confined to).
    source
        Shown in error messages.
    check_meshes
        Require every mesh to exist in a supported format. With ``False`` paths are still
        confined to ``base_dir`` (that is a safety rule, not a convenience), but a missing
        file or another format is accepted: enough for kinematics.

    Returns
    -------
    UrdfRobot

    Raises
    ------
    UrdfError
        Malformed XML, entity declarations, xacro macros, bad or missing values, unknown
        joint types, joints naming missing links, cycles, several roots, refused or missing meshes.
    """
    try:
        # Entities and external references are refused (billion laughs, XXE); defusedxml raises instead.
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UrdfError(f"refused: the file declares XML entities or external references ({type(exc).__name__}); "
                        "a URDF needs neither", source=source) from None
    except StdET.ParseError as exc:
        line, column = exc.position
        raise UrdfError(f"malformed XML at line {line}, column {column + 1}: {exc.msg}", source=source) from None
    if root.tag != "robot":
        raise UrdfError(f"not a URDF: the top element is <{root.tag}>, expected <robot>", source=source)
    _refuse_xacro(root, source)
    base_dir = Path(base_dir)

    # Named materials: the robot's own first, then names defined inside a visual (urdfdom shares those too).
    materials: dict[str, tuple[float, float, float, float] | None] = {}
    for material in root.findall("material"):
        name = material.get("name")
        try:
            if name:
                materials[name] = _material_color(material)
        except ValueError as exc:
            raise UrdfError(str(exc), source=source, where=f"material {name!r}") from None
    for material in root.findall("link/visual/material"):
        name = material.get("name")
        if name and materials.get(name) is None and material.find("color") is not None:
            try:
                materials[name] = _material_color(material)
            except ValueError as exc:
                raise UrdfError(str(exc), source=source, where=f"material {name!r}") from None

    links: list[UrdfLink] = []
    seen: set[str] = set()
    for index, element in enumerate(root.findall("link")):
        name = element.get("name")
        if not name:
            raise UrdfError("a <link> has no name", source=source, where=f"link #{index + 1}")
        if name in seen:
            raise UrdfError("two links have this name", source=source, where=f"link {name!r}")
        seen.add(name)
        visuals = []
        for v_index, visual in enumerate(element.findall("visual")):
            try:
                visuals.append(_visual(visual, base_dir, materials, check_meshes, package_roots))
            except ValueError as exc:
                raise UrdfError(str(exc), source=source, where=f"link {name!r}, visual {v_index}") from None
        links.append(UrdfLink(name, tuple(visuals)))
    if not links:
        raise UrdfError("the robot has no links", source=source)

    joints: list[UrdfJoint] = []
    joint_names: set[str] = set()
    for index, element in enumerate(root.findall("joint")):
        name = element.get("name")
        where = f"joint {name!r}" if name else f"joint #{index + 1}"
        if not name:
            raise UrdfError("a <joint> has no name", source=source, where=where)
        if name in joint_names:
            raise UrdfError("two joints have this name", source=source, where=where)
        joint_names.add(name)
        try:
            joints.append(_joint(element, name))
        except ValueError as exc:
            raise UrdfError(str(exc), source=source, where=where) from None
    by_name = {j.name: j for j in joints}
    for joint in joints:
        if joint.mimic is not None:
            target = by_name.get(joint.mimic.joint)
            if target is None or target.type not in MOVABLE_JOINT_TYPES or target.mimic is not None:
                why = ("is not defined" if target is None else
                       "is itself a mimic joint" if target.mimic is not None else f"is {target.type}")
                raise UrdfError(f"mimics joint {joint.mimic.joint!r}, which {why}; it must mimic a movable joint",
                                source=source, where=f"joint {joint.name!r}")
    try:
        root_link, _ = order_links([link.name for link in links], [(j.name, j.parent, j.child) for j in joints])
    except ValueError as exc:
        raise UrdfError(str(exc), source=source) from None
    return UrdfRobot(root.get("name") or "robot", tuple(links), tuple(joints), root_link)


def load_urdf(path: Path | str, *, check_meshes: bool = True, package_roots: Sequence[Path] = ()) -> UrdfRobot:
    """Read and check a URDF file; mesh paths resolve inside the file's folder.

    Parameters
    ----------
    path
        The ``.urdf`` file.
    check_meshes
        See :func:`parse_urdf`.

    Returns
    -------
    UrdfRobot
        With ``source`` set to the file's path.

    Raises
    ------
    UrdfError
        The file is missing, too large, or any problem :func:`parse_urdf` reports.
    """
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_URDF_BYTES:
            raise UrdfError(f"the file is {size:,} bytes; a URDF may be at most {MAX_URDF_BYTES:,}", source=source)
        data = path.read_bytes()
    except FileNotFoundError:
        raise UrdfError("file not found", source=source) from None
    except IsADirectoryError:
        raise UrdfError("is a folder, not a URDF file", source=source) from None
    except OSError as exc:
        raise UrdfError(f"cannot read the file ({exc.strerror})", source=source) from None
    robot = parse_urdf(data, path.parent, source=source, check_meshes=check_meshes, package_roots=package_roots)
    return UrdfRobot(robot.name, robot.links, robot.joints, robot.root, path)
