"""Generate the demo plant's meshes from trimesh primitives.

Run ``python assets/make_assets.py`` to rebuild them; the outputs are committed
so the viewer never needs this script at run time. Every mesh stands on z = 0
with its footprint centred on the origin, +x being the direction material flows
through the machine. Deliberately low-poly: a control-room PC with software
OpenGL draws about 6 M triangles/s, so each machine stays under ~400.
"""

from pathlib import Path

import numpy as np
import trimesh

HERE = Path(__file__).resolve().parent


def box(lx, ly, lz, x=0.0, y=0.0, z=0.0):
    m = trimesh.creation.box(extents=(lx, ly, lz))
    m.apply_translation((x, y, z + lz / 2))
    return m


def cyl(r, h, x=0.0, y=0.0, z=0.0, sections=16, axis="z"):
    m = trimesh.creation.cylinder(radius=r, height=h, sections=sections)
    if axis == "x":
        m.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0)))
        m.apply_translation((x, y, z))
    else:
        m.apply_translation((x, y, z + h / 2))
    return m


def join(*meshes):
    return trimesh.util.concatenate(meshes)


def cnc_machine():
    """A machining centre: plinth, enclosure with a window frame, side control cabinet, beacon."""
    return join(
        box(2.4, 1.9, 0.25),  # plinth
        box(2.2, 1.7, 1.75, z=0.25),  # enclosure
        box(1.2, 0.08, 0.9, y=-0.87, z=0.8),  # door window frame
        box(0.5, 0.6, 1.9, x=1.45, y=-0.5),  # control cabinet
        box(0.35, 0.12, 0.3, x=1.45, y=-0.86, z=1.2),  # operator panel
        box(0.8, 0.6, 0.6, x=-0.5, y=1.2),  # chip conveyor
        cyl(0.05, 0.35, x=1.0, y=0.6, z=2.0),  # signal beacon
    )


def wash_tunnel():
    """A through-feed washer: long tunnel, inlet and outlet hoods, exhaust stack."""
    return join(
        box(3.2, 1.4, 0.5),  # tank
        box(2.6, 1.3, 1.3, z=0.5),  # tunnel
        box(0.3, 1.1, 0.45, x=-1.45, z=0.55),  # inlet hood
        box(0.3, 1.1, 0.45, x=1.45, z=0.55),  # outlet hood
        cyl(0.16, 0.9, x=-0.6, y=0.3, z=1.8),  # exhaust stack
        box(0.6, 0.4, 1.2, x=0.9, y=-0.9),  # pump cabinet
    )


def leak_tester():
    """A leak test cell: frame, test bell on a column, pneumatic cabinet."""
    return join(
        box(1.6, 1.4, 0.9),  # base cabinet
        box(1.4, 0.15, 1.3, y=0.55, z=0.9),  # column
        cyl(0.32, 0.4, y=0.0, z=1.45),  # test bell
        box(1.4, 0.5, 0.12, y=0.35, z=2.2),  # head beam
        box(0.45, 0.5, 1.7, x=1.05, y=0.35),  # pneumatic cabinet
    )


def assembly_bench():
    """A manual assembly bench: table, legs, fixture, parts shelf, screen."""
    legs = [box(0.06, 0.06, 0.85, x=sx * 0.85, y=sy * 0.4) for sx in (-1, 1) for sy in (-1, 1)]
    return join(
        *legs,
        box(1.8, 0.9, 0.05, z=0.85),  # table top
        box(0.5, 0.4, 0.18, z=0.9),  # fixture
        box(1.8, 0.3, 0.04, y=0.3, z=1.5),  # parts shelf
        box(0.06, 0.06, 1.4, x=-0.85, y=0.4, z=0.9),  # uprights
        box(0.06, 0.06, 1.4, x=0.85, y=0.4, z=0.9),
        box(0.5, 0.04, 0.32, x=0.55, y=0.38, z=1.6),  # work instruction screen
    )


def laser_marker():
    """A laser marking cabinet with a viewing hood."""
    return join(
        box(1.1, 1.0, 1.0),
        box(0.9, 0.85, 0.7, z=1.0),
        cyl(0.04, 0.3, x=0.35, y=0.3, z=1.7),  # beacon
    )


def vision_gantry():
    """An inspection gantry straddling the conveyor: two legs, a beam, camera heads."""
    return join(
        box(0.12, 0.12, 2.0, y=-0.7),
        box(0.12, 0.12, 2.0, y=0.7),
        box(0.2, 1.6, 0.15, z=2.0),
        box(0.16, 0.16, 0.25, y=-0.3, z=1.75),
        box(0.16, 0.16, 0.25, y=0.3, z=1.75),
        box(0.5, 0.4, 1.4, x=0.5, y=-1.0),  # vision PC cabinet
    )


def palletiser_frame():
    """A packaging station: stretch-wrap turntable and frame mast."""
    return join(
        cyl(0.9, 0.12, sections=24),
        box(1.2, 1.0, 0.8, z=0.12),  # wrapped load
        box(0.2, 0.2, 2.4, x=-1.2),  # mast
        box(0.4, 0.3, 0.4, x=-1.0, z=1.2),  # film carriage
    )


OUTPUTS = {
    "cnc_machine.stl": (cnc_machine, "stl"),
    "wash_tunnel.obj": (wash_tunnel, "obj"),
    "leak_tester.ply": (leak_tester, "ply"),
    "assembly_bench.glb": (assembly_bench, "glb"),
    "laser_marker.stl": (laser_marker, "stl_ascii"),
    "vision_gantry.stl": (vision_gantry, "stl"),
    "packaging_wrapper.ply": (palletiser_frame, "ply"),
}


def main():
    for name, (make, file_type) in OUTPUTS.items():
        mesh = make()
        data = mesh.export(file_type=file_type)
        mode = "w" if isinstance(data, str) else "wb"
        with open(HERE / name, mode) as handle:
            handle.write(data)
        print(f"{name}: {len(mesh.faces)} triangles")


if __name__ == "__main__":
    main()
