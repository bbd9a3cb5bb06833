"""Mesh files: resolve references safely, load with trimesh, enforce size limits, load each once.

References in a layout are relative to the layout file and may not leave its
folder; ``asset:NAME`` points into the viewer's built-in asset library
(``assets/`` of the project, shipped with the application) and may not leave
that folder either. A resolved path that is a symbolic link pointing outside is
refused too, because the check is made on the fully resolved path.

Identical meshes are loaded once: the cache key is the resolved path with the
file's size and modification time, so twenty stations sharing one STL cost one
parse. The scene merges the transformed copies into one draw call (on software
OpenGL per-actor overhead dominates; see FIELD_NOTES in the shared notes).
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from viewer.model.errors import MeshError
from viewer.model.layout_io import mesh_reference_problem

MAX_COORDINATE = 1e7  # a mesh coordinate past this is damage or a wrong unit (a plant is a few hundred metres)
SUPPORTED_SUFFIXES = {".stl": "stl", ".obj": "obj", ".ply": "ply", ".glb": "glb", ".gltf": "gltf", ".off": "off",
                      ".dae": "dae"}


@dataclass(frozen=True)
class MeshLimits:
    """Refuse meshes larger than this (per file). A control-room PC must stay responsive."""

    max_bytes: int = 64 * 1024 * 1024
    max_triangles: int = 1_000_000
    # The whole plant, every instance counted: merged geometry costs ~40 bytes a triangle and
    # software OpenGL draws ~5 M triangles/s, so more would not be usable on a control-room PC anyway.
    max_plant_triangles: int = 5_000_000


@dataclass(frozen=True)
class MeshData:
    """Triangles in model units (metres): float32 vertices (N, 3) and int32 faces (M, 3)."""

    vertices: np.ndarray
    faces: np.ndarray
    two_sided: bool = False  # an open surface (a panel, a shell): drawn without back-face culling

    @property
    def n_triangles(self) -> int:
        """Number of triangles."""
        return int(self.faces.shape[0])

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned (min corner, max corner)."""
        return self.vertices.min(axis=0), self.vertices.max(axis=0)


def shared_data_dir(name: str) -> Path:
    """A folder the viewer ships (``assets``, ``layouts``): from a bundle, the source tree, or a wheel install.

    Order: a PyInstaller bundle's folder; the project tree this package sits in (source checkout or
    editable install); ``<prefix>/share/twin-viewer/<name>`` where a wheel puts it.
    """
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / name
    source = Path(__file__).resolve().parents[2] / name
    if source.is_dir():
        return source
    return Path(sys.prefix) / "share" / "twin-viewer" / name


def builtin_asset_dir() -> Path:
    """The built-in asset library: ``$TWIN_VIEWER_ASSETS`` if set, else the shipped ``assets`` folder."""
    env = os.environ.get("TWIN_VIEWER_ASSETS")
    return Path(env) if env else shared_data_dir("assets")


def _binary_stl_triangles(path: Path, size: int) -> int | None:
    """Triangle count from a binary STL header, or ``None`` when the file is not binary STL."""
    if size < 84:
        return None
    with path.open("rb") as handle:
        head = handle.read(84)
    (count,) = struct.unpack("<I", head[80:84])
    return count if 84 + 50 * count == size else None


def collada_facts(path: Path) -> tuple[int, float]:
    """A COLLADA file's triangle count and unit (metres per unit), read with defusedxml before pycollada ever
    sees it: a DTD or entity declaration (the billion-laughs file) is refused here."""
    from defusedxml import DefusedXmlException
    from defusedxml import ElementTree as SafeET

    try:
        root = SafeET.fromstring(path.read_bytes(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MeshError(f"{path.name}: refused: the COLLADA file declares a DTD or entities "
                        f"({type(exc).__name__}); a mesh needs neither") from None
    except Exception as exc:  # xml.etree.ElementTree.ParseError and friends
        raise MeshError(f"{path.name}: not a readable DAE mesh (malformed XML: {str(exc)[:120]})") from None
    namespace = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    if root.tag != f"{namespace}COLLADA":
        raise MeshError(f"{path.name}: not a COLLADA file (the top element is <{root.tag.split('}')[-1]}>)")
    count = 0
    for kind, per in (("triangles", 1), ("polylist", 1), ("polygons", 1), ("tristrips", 1), ("trifans", 1)):
        for element in root.iter(f"{namespace}{kind}"):
            try:
                count += int(element.get("count", "0")) * per
            except ValueError:
                raise MeshError(f"{path.name}: <{kind} count={element.get('count')!r}> is not a number") from None
    scale = 1.0
    unit = root.find(f"{namespace}asset/{namespace}unit")
    if unit is not None and unit.get("meter"):
        try:
            scale = float(unit.get("meter"))
        except ValueError:
            raise MeshError(f"{path.name}: <unit meter={unit.get('meter')!r}> is not a number") from None
        if not (1e-6 <= scale <= 1e3):
            raise MeshError(f"{path.name}: <unit meter={scale:g}> is not a plausible unit")
    return count, scale


def _gltf_triangles(path: Path) -> int | None:
    """Triangles a glTF or GLB declares: each triangle primitive's index count (or vertex count) / 3, from
    its JSON (a GLB's first chunk), before any buffer is read."""
    import json

    try:
        with path.open("rb") as handle:
            head = handle.read(20)
            if path.suffix.lower() == ".glb":
                if len(head) < 20 or head[:4] != b"glTF" or head[16:20] != b"JSON":
                    return None
                (length,) = struct.unpack_from("<I", head, 12)
                text = handle.read(min(length, 64 * 2**20))
            else:
                text = head + handle.read(64 * 2**20)
        doc = json.loads(text)
        accessors = doc.get("accessors") or []
        total = 0
        for mesh in doc.get("meshes") or []:
            for primitive in mesh.get("primitives") or []:
                if primitive.get("mode", 4) != 4:  # strips and fans: counted by the parse
                    continue
                index = primitive.get("indices")
                if index is None:
                    index = (primitive.get("attributes") or {}).get("POSITION")
                if isinstance(index, int) and 0 <= index < len(accessors):
                    total += int(accessors[index].get("count", 0)) // 3
        return total
    except (OSError, ValueError, RecursionError, AttributeError, TypeError):
        return None  # not what it claims: the parse says why


def declared_triangles(path: Path, size: int) -> int | None:
    """At least how many triangles a file holds, from what it says before any parse: a binary STL's count, a
    PLY's or OFF's header, an OBJ's face lines (each is one triangle or more). None: the format does not say."""
    suffix = path.suffix.lower()
    if suffix == ".stl":
        return _binary_stl_triangles(path, size)
    if suffix in (".gltf", ".glb"):
        return _gltf_triangles(path)
    try:
        if suffix == ".obj":
            with path.open("rb") as handle:
                data = handle.read()
            return data.count(b"\nf ") + data.startswith(b"f ")
        if suffix in (".ply", ".off"):
            with path.open("rb") as handle:
                head = handle.read(4096)
            if suffix == ".ply":
                for line in head.split(b"\n"):
                    parts = line.split()
                    if parts[:2] == [b"element", b"face"] and len(parts) == 3 and parts[2].isdigit():
                        return int(parts[2])
                    if parts[:1] == [b"end_header"]:
                        break
                return None
            lines = [ln.split(b"#")[0].split() for ln in head.split(b"\n")]
            lines = [ln for ln in lines if ln]
            if lines and lines[0][0].endswith(b"OFF"):
                counts = lines[0][1:] if len(lines[0]) > 1 else (lines[1] if len(lines) > 1 else [])
                if len(counts) >= 2 and counts[1].isdigit():
                    return int(counts[1])
    except OSError:
        return None
    return None


def orient_faces(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, bool]:
    """Faces wound so their front side faces the viewer, and whether the mesh must be drawn two-sided.

    The scene culls back faces (on software OpenGL that saves a fifth of the frame), which is only safe when
    every visible surface faces outward. A closed, consistently wound mesh is turned outward if it was inside
    out; any other mesh (open panels, mixed winding) keeps its faces and is flagged two-sided: the scene draws
    those without culling, instead of doubling every triangle (a published arm: 122k triangles, not 244k).
    """
    import trimesh

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    mesh.merge_vertices()  # STL repeats each corner per triangle; closedness needs shared vertices
    if mesh.is_watertight and mesh.is_winding_consistent:
        return (faces[:, ::-1].copy() if mesh.volume < 0 else faces), False
    return faces, True


class MeshLibrary:
    """Loads meshes by reference, checks limits, and caches each distinct file once (thread-safe)."""

    def __init__(self, asset_dir: Path | None = None, limits: MeshLimits | None = None) -> None:
        self.asset_dir = Path(asset_dir) if asset_dir is not None else builtin_asset_dir()
        self.limits = limits or MeshLimits()
        self._cache: dict[tuple[str, int, int], MeshData] = {}
        self._lock = threading.Lock()
        self.files_parsed = 0

    def resolve(self, reference: str, layout_dir: Path, suffixes: Iterable[str] | None = None) -> Path:
        """The file a reference names; :class:`MeshError` if refused or missing.

        ``suffixes`` are the accepted file types (mesh formats by default; ``(".urdf",)`` for robots).
        """
        why = mesh_reference_problem(reference)
        if why:
            raise MeshError(why)
        if reference.startswith("asset:"):
            base, rel = self.asset_dir, reference[len("asset:"):]
        else:
            base, rel = Path(layout_dir), reference
        try:
            base = base.resolve()
            target = (base / rel).resolve()
            is_file = target.is_file()
        except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13), a name too long
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise MeshError(f"{reference[:80]!r}: cannot be resolved ({reason})") from None
        if not target.is_relative_to(base):
            raise MeshError(f"{reference!r} resolves outside {base} (through a link?); refused")
        if not is_file:
            where = "the asset library" if reference.startswith("asset:") else "the layout's folder"
            raise MeshError(f"{reference!r}: file not found in {where} ({target})")
        accepted = set(suffixes) if suffixes is not None else set(SUPPORTED_SUFFIXES)
        if target.suffix.lower() not in accepted:
            kinds = ", ".join(sorted(accepted))
            what = "mesh format" if suffixes is None else "file type"
            raise MeshError(f"{reference!r}: unsupported {what} {target.suffix!r} (supported: {kinds})")
        return target

    def load(self, path: Path) -> MeshData:
        """Load one mesh file (cached); :class:`MeshError` on a bad or oversized file."""
        try:
            stat = path.stat()
        except OSError as exc:
            raise MeshError(f"{path.name}: cannot read ({exc.strerror})") from None
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        limits = self.limits
        if stat.st_size > limits.max_bytes:
            raise MeshError(
                f"{path.name} is {stat.st_size:,} bytes ({stat.st_size / 2**20:.1f} MiB); the limit is "
                f"{limits.max_bytes:,} bytes ({limits.max_bytes / 2**20:.1f} MiB) per mesh file "
                "(simplify the mesh, or raise the limit)"
            )
        scale = 1.0
        if path.suffix.lower() == ".gltf":
            self._check_gltf_files(path, stat.st_size)
        count = declared_triangles(path, stat.st_size)  # before parsing: a file's own counts, where it has them
        if path.suffix.lower() == ".dae":
            count, scale = collada_facts(path)
        if count is not None and count > limits.max_triangles:
            raise MeshError(self._triangle_message(path, count))
        mesh = self._parse(path, limits.max_triangles)
        if scale != 1.0:  # COLLADA says its unit (<unit meter="0.001"/>: millimetres); the scene is in metres
            mesh = MeshData(np.ascontiguousarray(mesh.vertices * np.float32(scale)), mesh.faces, mesh.two_sided)
        with self._lock:
            self._cache[key] = mesh
            self.files_parsed += 1
        return mesh

    def _triangle_message(self, path: Path, count: int) -> str:
        return (
            f"{path.name} has {count:,} triangles; the limit is {self.limits.max_triangles:,} per mesh "
            "(decimate it, or raise the limit)"
        )

    def _check_gltf_files(self, path: Path, size: int) -> None:
        """A .gltf's external buffers and images count toward the byte limit, and stay beside the file."""
        import json

        try:
            doc = json.loads(path.read_bytes())
        except (ValueError, RecursionError):
            raise MeshError(f"{path.name}: not a readable GLTF mesh (its JSON is malformed)") from None
        if not isinstance(doc, dict):
            raise MeshError(f"{path.name}: not a readable GLTF mesh (the top level is not an object)")
        total = size
        for kind in ("buffers", "images"):
            for item in doc.get(kind) or []:
                uri = item.get("uri") if isinstance(item, dict) else None
                if not isinstance(uri, str) or uri.startswith("data:"):
                    continue
                try:  # the same rules as a layout's mesh reference, with the glTF's folder as the root
                    target = self.resolve(uri, path.parent, suffixes=(Path(uri).suffix.lower(),))
                    total += target.stat().st_size
                except MeshError as exc:
                    raise MeshError(f"{path.name}: its {kind[:-1]} {uri[:80]!r} is refused ({exc})") from None
        if total > self.limits.max_bytes:
            raise MeshError(f"{path.name} with its buffers and images is {total:,} bytes; the limit is "
                            f"{self.limits.max_bytes:,} bytes ({self.limits.max_bytes / 2**20:.1f} MiB) per mesh")

    @staticmethod
    def _parse(path: Path, max_triangles: int | None = None) -> MeshData:
        import trimesh

        file_type = SUPPORTED_SUFFIXES[path.suffix.lower()]
        try:
            # A resolver rooted at the file's own folder: a glTF's external buffers load from beside it. COLLADA
            # gets none: its textures are not drawn, and pycollada would read whatever <init_from> names.
            resolver = None if file_type == "dae" else trimesh.resolvers.FilePathResolver(str(path.parent))
            with path.open("rb") as handle:
                loaded = trimesh.load(handle, file_type=file_type, resolver=resolver, force="mesh", process=False)
        except MeshError:
            raise
        except Exception as exc:  # trimesh raises many types for malformed files
            detail = str(exc).strip()[:200]
            why = f"{type(exc).__name__}: {detail}" if detail else \
                f"its structure does not match the format ({type(exc).__name__} in the reader)"
            raise MeshError(f"{path.name}: not a readable {file_type.upper()} mesh ({why})") from None
        vertices = np.asarray(getattr(loaded, "vertices", np.empty((0, 3))), dtype=np.float32)
        faces = np.asarray(getattr(loaded, "faces", np.empty((0, 3))), dtype=np.int32)
        if faces.ndim != 2 or faces.shape[0] == 0 or faces.shape[1] != 3:
            raise MeshError(f"{path.name}: the file holds no triangles")
        if vertices.ndim != 2 or vertices.shape[1] != 3:  # a damaged OBJ's "v 0.5" lines come back as 1-D points
            raise MeshError(f"{path.name}: its vertices are not 3D points (shape {vertices.shape})")
        if faces.min() < 0 or faces.max() >= len(vertices):
            raise MeshError(f"{path.name}: faces refer to vertices that do not exist")
        if not np.isfinite(vertices).all():
            raise MeshError(f"{path.name}: vertices contain NaN or infinite coordinates")
        if len(vertices) and float(np.abs(vertices).max()) > MAX_COORDINATE:
            raise MeshError(f"{path.name}: a vertex lies {float(np.abs(vertices).max()):.3g} units from the origin; "
                            f"meshes are at most {MAX_COORDINATE:.0e} (a damaged file, or the wrong unit)")
        if max_triangles is not None and len(faces) > max_triangles:  # the file's own triangles, not doubled
            raise MeshError(f"{path.name} has {len(faces):,} triangles; the limit is {max_triangles:,} per mesh "
                            "(decimate it, or raise the limit)")
        oriented, two_sided = orient_faces(vertices, faces)
        return MeshData(np.ascontiguousarray(vertices), np.ascontiguousarray(oriented), two_sided)
