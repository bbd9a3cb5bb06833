"""Robots in layouts: the built-in arm and a real URDF robot, posed in the scene."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from viewer.geometry.mesh_library import MeshLibrary
from viewer.geometry.plant import build_plant_geometry
from viewer.model.layout_io import load_layout

ROBOTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "robots"


def scene_for(layout_path: Path):
    import pyvista as pv

    import viewer.scene  # noqa: F401 - selects the headless GL window before VTK loads
    from viewer.scene.plant_scene import PlantScene

    layout = load_layout(layout_path)
    geometry = build_plant_geometry(layout, layout_path.parent, MeshLibrary())
    plotter = pv.Plotter(off_screen=True, window_size=[320, 240])
    scene = PlantScene(plotter)
    scene.show(layout, geometry, labels=False)
    return scene, geometry, plotter


def write(path: Path, components: list[dict]) -> Path:
    path.write_text(json.dumps({"format": "twin-viewer-layout", "version": 1, "name": "r", "components": components}))
    return path


def test_builtin_arm_poses_are_rigid_link_motions(tmp_path):
    path = write(tmp_path / "arm.json", [{"id": "R", "kind": "robot", "position": [2, 3, 0], "rotation": [0, 0, 30],
                                          "robot": {"reach": 1.6}}])
    scene, geometry, plotter = scene_for(path)
    rig = geometry.rigs["R"]
    home = np.array(scene._mesh.points[rig.vertex_start:rig.vertex_stop], dtype=float)
    flags = scene.set_robot_pose("R", [40, -30, 50, 10, 20, 90])
    assert not flags.any()
    posed = np.array(scene._mesh.points[rig.vertex_start:rig.vertex_stop], dtype=float)
    base = rig.frame_of_vertex == 0
    assert np.allclose(posed[base], home[base], atol=1e-5)  # the pedestal never moves
    for link in range(1, 6):  # every other link moved rigidly: distances inside it are kept
        pts_home, pts_posed = home[rig.frame_of_vertex == link], posed[rig.frame_of_vertex == link]
        assert not np.allclose(pts_home, pts_posed, atol=1e-3)
        d_home = np.linalg.norm(pts_home[:, None] - pts_home[None], axis=2)
        d_posed = np.linalg.norm(pts_posed[:, None] - pts_posed[None], axis=2)
        assert np.allclose(d_home, d_posed, atol=1e-4)
    # Joint 1 alone turns the whole arm about the base's vertical axis through (2, 3).
    scene.set_robot_pose("R", list(rig.home_deg))
    turned = list(rig.home_deg)
    turned[0] += 90
    scene.set_robot_pose("R", turned)
    rotated = np.array(scene._mesh.points[rig.vertex_start:rig.vertex_stop], dtype=float)
    c, s = 0.0, 1.0  # cos 90°, sin 90°
    pivot = np.array([2.0, 3.0])
    rel = home[:, :2] - pivot
    expected = np.column_stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]]) + pivot
    moving = rig.frame_of_vertex >= 1
    assert np.allclose(rotated[moving, :2], expected[moving], atol=1e-4)
    # Out-of-limit values are clamped and flagged.
    flags = scene.set_robot_pose("R", [400, 0, 0, 0, 0, 0])
    assert flags.tolist() == [True, False, False, False, False, False]
    plotter.close()


def test_a_wrong_number_of_arm_joints_is_refused(tmp_path):
    from viewer.model.errors import LayoutError

    path = write(tmp_path / "bad.json", [{"id": "R", "kind": "robot", "position": [0, 0, 0],
                                          "robot": {"joints": [1, 2, 3]}}])
    with pytest.raises(LayoutError, match=r"robot\.joints.*6 joint values"):
        load_layout(path)


def test_a_urdf_robot_in_a_layout_moves_like_an_independent_fk_says(tmp_path):
    yourdfpy = pytest.importorskip("yourdfpy")
    source = ROBOTS / "kuka_iiwa"
    if not source.is_dir():
        pytest.skip("shared robot data absent")
    shutil.copytree(source, tmp_path / "kuka_iiwa")
    path = write(tmp_path / "cell.json", [{"id": "IIWA", "kind": "robot", "position": [1, 0, 0.5],
                                           "robot": {"urdf": "kuka_iiwa/model.urdf"}}])
    scene, geometry, plotter = scene_for(path)
    rig = geometry.rigs["IIWA"]
    chain = rig.chain
    home_points = np.array(scene._mesh.points[rig.vertex_start:rig.vertex_stop], dtype=float)
    q_deg = [30, -40, 20, 60, -30, 45, 10]
    scene.set_robot_pose("IIWA", q_deg)
    posed = np.array(scene._mesh.points[rig.vertex_start:rig.vertex_stop], dtype=float)
    # Independent check: yourdfpy's link frames at home and at q move each link's home vertices.
    urdf = yourdfpy.URDF.load(str(tmp_path / "kuka_iiwa" / "model.urdf"), load_meshes=False, build_scene_graph=True)
    names = list(urdf.actuated_joint_names)

    def frame(link: str, q_rad) -> np.ndarray:
        urdf.update_cfg(dict(zip(names, q_rad, strict=True)))
        return urdf.get_transform(link, urdf.base_link)

    q_home = np.radians(np.asarray(rig.home_deg, dtype=float))
    q_new = np.radians(np.asarray(q_deg, dtype=float))
    checked = 0
    for index in np.unique(rig.frame_of_vertex):
        link = chain.link_names[rig.frame_links[index]]
        motion = frame(link, q_new) @ np.linalg.inv(frame(link, q_home))
        base = np.eye(4)
        base[:3, 3] = (1, 0, 0.5)
        world_motion = base @ motion @ np.linalg.inv(base)
        pts = home_points[rig.frame_of_vertex == index]
        expected = pts @ world_motion[:3, :3].T + world_motion[:3, 3]
        assert np.allclose(posed[rig.frame_of_vertex == index], expected, atol=2e-4), link
        checked += 1
    assert checked >= 7
    plotter.close()


def test_a_layout_joint_list_arm_follows_its_closed_form(tmp_path):
    # A planar two-link arm in the layout: l1 = 1.0, l2 = 0.5, both about z, on a pedestal 0.2 high.
    chain = [
        {"name": "q1", "type": "revolute", "xyz": [0, 0, 0.2], "axis": [0, 0, 1], "limits": [-180, 180]},
        {"name": "q2", "type": "revolute", "xyz": [1.0, 0, 0], "axis": [0, 0, 1], "limits": [-150, 150]},
        {"name": "tip", "type": "fixed", "xyz": [0.5, 0, 0]},
    ]
    path = write(tmp_path / "planar.json", [{"id": "P", "kind": "robot", "position": [0, 0, 0],
                                             "robot": {"chain": chain, "joints": [0, 0]}}])
    scene, geometry, plotter = scene_for(path)
    rig = geometry.rigs["P"]
    assert rig.chain.n_joints == 2 and list(rig.chain.joint_names) == ["q1", "q2"]
    q1, q2 = 30.0, 45.0
    scene.set_robot_pose("P", [q1, q2])
    frames = rig.chain.forward(np.radians([q1, q2]))
    tip = frames[rig.chain.link_index("tip_link")][:3, 3]
    a, b = np.radians(q1), np.radians(q1 + q2)
    assert np.allclose(tip, [1.0 * np.cos(a) + 0.5 * np.cos(b), 1.0 * np.sin(a) + 0.5 * np.sin(b), 0.2], atol=1e-9)
    # The drawn second bone ends at the tip: its farthest vertex from the elbow lies near the closed form.
    posed = np.array(scene._mesh.points[rig.vertex_start:rig.vertex_stop], dtype=float)
    elbow = np.array([np.cos(a), np.sin(a), 0.2])
    bone2 = posed[rig.frame_of_vertex == rig.chain.link_index("q2_link")]
    far = bone2[np.argmax(np.linalg.norm(bone2 - elbow, axis=1))]
    assert np.linalg.norm(far[:2] - tip[:2]) < 0.1
    plotter.close()


def _reach_layout(tmp_path: Path, robot: dict, served_at: float, walkway_at: float) -> Path:
    doc = {"format": "twin-viewer-layout", "version": 1, "name": "reach", "components": [
        {"id": "R", "kind": "robot", "position": [0, 0, 0], "robot": robot},
        {"id": "S", "kind": "station", "position": [served_at, 0, 0]},
        {"id": "W", "kind": "agv-path", "position": [0, 0, 0],
         "path": {"points": [[-3, walkway_at], [3, walkway_at]], "width": 0.8}}],
        "flow": [{"from": "R", "to": "S"}]}
    path = tmp_path / "reach.json"
    path.write_text(json.dumps(doc))
    return path


def checks_of(path: Path) -> set[str]:
    from viewer.geometry.reach import robot_reaches
    from viewer.model.checks import check_layout, footprints_from_geometry

    layout = load_layout(path)
    geometry = build_plant_geometry(layout, path.parent, MeshLibrary(), strict=False)
    return {p.code for p in check_layout(layout, footprints_from_geometry(geometry), robot_reaches(geometry))}


def test_reach_and_safety_come_from_the_robots_own_kinematics(tmp_path):
    from viewer.geometry.reach import robot_reach

    # A 0.3 m planar chain (0.2 + 0.1): closed form 0.3 m at its frames, a few cm more for its drawn parts.
    chain = [{"name": "q1", "type": "revolute", "xyz": [0, 0, 0.3], "axis": [0, 0, 1], "limits": [-180, 180]},
             {"name": "q2", "type": "revolute", "xyz": [0.2, 0, 0], "axis": [0, 0, 1], "limits": [-90, 90]},
             {"name": "tip", "type": "fixed", "xyz": [0.1, 0, 0]}]
    path = _reach_layout(tmp_path, {"chain": chain}, served_at=1.6, walkway_at=1.0)
    layout = load_layout(path)
    geometry = build_plant_geometry(layout, path.parent, MeshLibrary(), strict=False)
    reach = robot_reach(layout.component("R"), geometry)
    assert 0.295 <= reach <= 0.38
    from viewer.model.checks import footprints_from_geometry

    xmin = footprints_from_geometry(geometry)["S"][0]
    assert reach < xmin < 1.4  # the station's near edge: out of this arm's reach, inside a 1.6 m arm's
    assert "robot-reach" in checks_of(path) and "robot-safety" not in checks_of(path)
    # the built-in arm of 1.6 m reach on the same layout: the station is reachable, the walkway is not safe
    assert "robot-safety" in checks_of(_reach_layout(tmp_path, {"reach": 1.6}, 1.6, 1.0))
    assert "robot-reach" not in checks_of(_reach_layout(tmp_path, {"reach": 1.6}, 1.6, 1.0))


def test_a_urdf_robots_reach_is_its_own_not_the_built_in_arms(tmp_path):
    yourdfpy = pytest.importorskip("yourdfpy")
    from viewer.geometry.reach import robot_reach

    source = ROBOTS / "kuka_iiwa"
    if not source.is_dir():
        pytest.skip("shared robot data absent")
    shutil.copytree(source, tmp_path / "kuka_iiwa")
    path = write(tmp_path / "cell.json", [{"id": "IIWA", "kind": "robot", "position": [0, 0, 0],
                                           "robot": {"urdf": "kuka_iiwa/model.urdf"}}])
    layout = load_layout(path)
    geometry = build_plant_geometry(layout, path.parent, MeshLibrary())
    ours = robot_reach(layout.component("IIWA"), geometry)
    # independent: yourdfpy's link frames at 2,000 random poses within the URDF's limits
    urdf = yourdfpy.URDF.load(str(tmp_path / "kuka_iiwa" / "model.urdf"), load_meshes=False, build_scene_graph=True)
    names = list(urdf.actuated_joint_names)
    limits = [(urdf.joint_map[n].limit.lower, urdf.joint_map[n].limit.upper) for n in names]
    rng = np.random.default_rng(5)
    frames_reach = 0.0
    for _ in range(2000):
        urdf.update_cfg({n: rng.uniform(lo, hi) for n, (lo, hi) in zip(names, limits, strict=True)})
        for link in urdf.link_map:
            x, y = urdf.get_transform(link, urdf.base_link)[:2, 3]
            frames_reach = max(frames_reach, float(np.hypot(x, y)))
    assert 0.75 < frames_reach < 0.95  # KUKA states 800 mm for the LBR iiwa 7 R800
    assert frames_reach - 0.02 <= ours <= frames_reach + 0.2  # plus what its meshes add past their frames
    assert abs(ours - 1.45) > 0.3  # not the built-in arm's figure


def test_a_urdf_robot_without_visuals_validates_and_draws_its_skeleton(tmp_path):
    from viewer.geometry.validate import validate_layout_file

    (tmp_path / "robot.urdf").write_text("""<?xml version="1.0"?>
<robot name="bare">
  <link name="base"/><link name="l1"/><link name="l2"/>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><origin xyz="0 0 0.3"/>
    <axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
  <joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/><origin xyz="0.4 0 0"/>
    <axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
</robot>
""")
    path = write(tmp_path / "cell.json", [{"id": "R", "kind": "robot", "position": [0, 0, 0],
                                           "robot": {"urdf": "robot.urdf"}}])
    assert validate_layout_file(path) == []
    geometry = build_plant_geometry(load_layout(path), tmp_path, MeshLibrary())
    rig = geometry.rigs["R"]
    assert rig.vertex_stop > rig.vertex_start  # something to see, and to pose
    assert 0.4 <= rig.reach <= 0.5  # the 0.4 m link, plus the skeleton's thickness


def _ros_package(root: Path, name: str, mesh_ref: str) -> Path:
    """A ROS package as ROS-Industrial lays them out: NAME/package.xml, NAME/urdf/, NAME/meshes/visual/."""
    import trimesh

    package = root / name
    (package / "urdf").mkdir(parents=True)
    (package / "meshes" / "visual").mkdir(parents=True)
    (package / "package.xml").write_text(f"<?xml version='1.0'?><package format='2'><name>{name}</name>"
                                         "<version>1.0.0</version></package>")
    trimesh.creation.box((0.1, 0.1, 0.4)).export(package / "meshes" / "visual" / "link_1.stl")
    (package / "urdf" / "robot.urdf").write_text(f"""<?xml version="1.0"?>
<robot name="r">
  <link name="base_link"><visual><geometry><mesh filename="{mesh_ref}"/></geometry></visual></link>
  <link name="link_1"><visual><geometry><mesh filename="{mesh_ref}"/></geometry></visual></link>
  <joint name="joint_1" type="revolute"><parent link="base_link"/><child link="link_1"/>
    <origin xyz="0 0 0.4"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
</robot>
""")
    return package


def test_package_uris_resolve_through_the_layouts_package_roots(tmp_path):
    from viewer.model.errors import MeshError

    ref = "package://my_robot_support/meshes/visual/link_1.stl"
    _ros_package(tmp_path / "ws" / "src", "my_robot_support", ref)
    urdf = "ws/src/my_robot_support/urdf/robot.urdf"
    # without robot.packages the package is three folders down: not found, and the message says what to do
    path = write(tmp_path / "cell.json", [{"id": "R", "kind": "robot", "position": [0, 0, 0],
                                           "robot": {"urdf": urdf}}])
    with pytest.raises(MeshError, match=r"package roots searched: .*robot\.packages"):
        build_plant_geometry(load_layout(path), tmp_path, MeshLibrary())
    # named: the URDF and its meshes resolve, by path or by package:// for the URDF too
    for reference in (urdf, "package://my_robot_support/urdf/robot.urdf"):
        path = write(tmp_path / "cell.json", [{"id": "R", "kind": "robot", "position": [0, 0, 0],
                                               "robot": {"urdf": reference, "packages": ["ws/src"]}}])
        geometry = build_plant_geometry(load_layout(path), tmp_path, MeshLibrary())
        # two boxes of 12 triangles, STL repeating each corner: 2 x 36 vertices
        assert geometry.rigs["R"].vertex_stop - geometry.rigs["R"].vertex_start == 72
    # a package path that climbs out of its root is still refused
    evil = tmp_path / "evil"
    _ros_package(evil / "src", "evil_support", "package://evil_support/../../../secret.stl")
    (tmp_path / "secret.stl").write_bytes((tmp_path / "ws/src/my_robot_support/meshes/visual/link_1.stl").read_bytes())
    path = write(tmp_path / "cell.json", [{"id": "R", "kind": "robot", "position": [0, 0, 0],
                                           "robot": {"urdf": "evil/src/evil_support/urdf/robot.urdf",
                                                     "packages": ["evil/src"]}}])
    with pytest.raises(MeshError, match=r"climbs out|outside"):
        build_plant_geometry(load_layout(path), tmp_path, MeshLibrary())


def test_a_ros_package_with_collada_visuals_loads_and_a_bad_mesh_names_its_link(tmp_path):
    import trimesh

    from viewer.model.errors import MeshError

    package = _ros_package(tmp_path / "src", "dae_support", "package://dae_support/meshes/visual/link_1.dae")
    box = trimesh.creation.box((0.1, 0.1, 0.4))
    (package / "meshes" / "visual" / "link_1.dae").write_bytes(trimesh.exchange.dae.export_collada(box))
    path = write(tmp_path / "cell.json", [{"id": "R", "kind": "robot", "position": [0, 0, 0],
                                           "robot": {"urdf": "package://dae_support/urdf/robot.urdf",
                                                     "packages": ["src"]}}])
    geometry = build_plant_geometry(load_layout(path), tmp_path, MeshLibrary())
    assert geometry.rigs["R"].vertex_stop > geometry.rigs["R"].vertex_start
    (package / "meshes" / "visual" / "link_1.dae").write_text("<COLLADA><broken")
    with pytest.raises(MeshError, match=r"robot.urdf: link 'base_link', visual 1 of 1 \(package://dae_support/"
                                        r"meshes/visual/link_1.dae\): link_1.dae: not a readable DAE mesh"):
        build_plant_geometry(load_layout(path), tmp_path, MeshLibrary())


def test_focusing_a_robot_turns_the_camera_round_a_machine_that_would_hide_it(tmp_path):
    from viewer.scene.plant_scene import _segment_hits_box

    robot = {"id": "R", "kind": "robot", "position": [0, 0, 0]}
    path = write(tmp_path / "open.json", [robot])
    scene, geometry, plotter = scene_for(path)
    camera = plotter.renderer.GetActiveCamera()
    before = np.array(camera.GetPosition()) - np.array(camera.GetFocalPoint())
    scene.focus("R")
    free = np.array(camera.GetPosition()) - np.array(camera.GetFocalPoint())
    # nothing in the way: the operator's viewing direction is kept
    assert np.allclose(free / np.linalg.norm(free), before / np.linalg.norm(before), atol=1e-6)
    plotter.close()
    # a tall machine 2.5 m away exactly along that direction
    toward = free[:2] / np.linalg.norm(free[:2]) * 2.5
    wall = {"id": "W", "kind": "prop", "position": [float(toward[0]), float(toward[1]), 0],
            "primitive": {"type": "box", "size": [1.5, 1.5, 6.0]}}
    path = write(tmp_path / "hidden.json", [robot, wall])
    scene, geometry, plotter = scene_for(path)
    scene.focus("R")
    camera = plotter.renderer.GetActiveCamera()
    eye, centre = np.array(camera.GetPosition()), np.array(camera.GetFocalPoint())
    box = np.array(geometry.bounds[geometry.component_ids.index("W")], dtype=float)
    assert not _segment_hits_box(eye, centre + (eye - centre) * 0.05, box)  # the robot is in sight
    assert _segment_hits_box(centre + free, centre + free * 0.05, box)  # where it would have looked: hidden
    plotter.close()


def test_an_open_panel_is_drawn_once_by_the_actor_that_does_not_cull(tmp_path):
    import trimesh

    # a 2 x 2 m horizontal panel 1 m up, its triangles facing up only (an open surface); a closed box beside it
    panel = trimesh.Trimesh(vertices=[[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], faces=[[0, 1, 2], [0, 2, 3]],
                            process=False)
    panel.export(tmp_path / "panel.stl")
    path = write(tmp_path / "panel.json", [
        {"id": "P", "kind": "prop", "position": [0, 0, 1], "mesh": "panel.stl", "color": "#c03030"},
        {"id": "B", "kind": "prop", "position": [4, 0, 0], "primitive": {"type": "box", "size": [1, 1, 1]}}])
    scene, geometry, plotter = scene_for(path)
    start, stop = geometry.face_ranges[geometry.component_ids.index("P")]
    assert stop - start == 2 and geometry.face_two_sided[start:stop].all()  # not doubled
    assert not geometry.face_two_sided[geometry.face_ranges[1][0]:geometry.face_ranges[1][1]].any()
    culled, open_ = scene._actors["plant"], scene._actors["plant_open"]
    assert culled.GetProperty().GetBackfaceCulling() and not open_.GetProperty().GetBackfaceCulling()
    assert open_.GetMapper().GetInput().GetNumberOfCells() == 2
    assert culled.GetMapper().GetInput().GetNumberOfCells() == 12
    # one point buffer: posing or dragging moves both; colours and picking find the panel in its own mesh
    assert open_.GetMapper().GetInput().GetPoints() is culled.GetMapper().GetInput().GetPoints()
    scene.select("P")
    assert (scene.displayed_rgb("P") != geometry.face_rgb[start:stop]).any()  # tinted: written into its mesh
    scene.view_top()
    x, y = scene.project((0.0, 0.0, 1.0))
    assert scene.pick(x, y) == "P"
    plotter.close()


def test_a_big_robot_mesh_has_an_overview_version_that_moves_with_it(tmp_path):
    import trimesh

    from viewer.geometry.lod import LOD_MIN_TRIANGLES

    dense = trimesh.creation.icosphere(subdivisions=6, radius=0.15)  # 81,920 triangles, closed
    dense.export(tmp_path / "link.stl")
    (tmp_path / "dense.urdf").write_text("""<?xml version="1.0"?>
<robot name="dense">
  <link name="base"><visual><geometry><box size="0.3 0.3 0.2"/></geometry></visual></link>
  <link name="arm"><visual><origin xyz="0.5 0 0"/><geometry><mesh filename="link.stl"/></geometry></visual></link>
  <joint name="j1" type="revolute"><parent link="base"/><child link="arm"/><origin xyz="0 0 0.3"/>
    <axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
</robot>
""")
    path = write(tmp_path / "cell.json", [{"id": "R", "kind": "robot", "position": [0, 0, 0],
                                           "robot": {"urdf": "dense.urdf"}},
                                          {"id": "S", "kind": "station", "position": [40, 0, 0]}])
    scene, geometry, plotter = scene_for(path)
    rig = geometry.rigs["R"]
    start, stop = geometry.face_ranges[geometry.component_ids.index("R")]
    assert stop - start > LOD_MIN_TRIANGLES
    lod = geometry.overview["R"]
    assert len(lod.faces) < (stop - start) / 5  # much lighter
    # every overview corner is one of the robot's own vertices, on the same link as the face it stands for
    assert rig.vertex_start <= lod.faces.min() and lod.faces.max() < rig.vertex_stop
    link_of_vertex = rig.frame_of_vertex[lod.faces - rig.vertex_start]
    link_of_source = rig.frame_of_vertex[geometry.faces[lod.source][:, 0] - rig.vertex_start]
    assert (link_of_vertex == link_of_source[:, None]).all()
    # far away (the whole plant in view): the overview is drawn; near the robot: the full mesh
    scene.view_iso()
    plotter.ren_win.Render()  # the renderer's start chooses (pyvista's render() skips a plotter never shown)
    assert scene.showing_overview and scene._actors["plant_overview"].GetVisibility()
    assert not scene._actors["plant_detail"].GetVisibility()
    scene.focus("R")
    plotter.ren_win.Render()
    assert not scene.showing_overview and scene._actors["plant_detail"].GetVisibility()
    # a pose moves the overview too (it shares the points), and picking on it finds the robot
    before = np.array(scene._mesh.points[lod.faces[:, 0]], dtype=float)
    scene.set_robot_pose("R", [90.0])
    after = np.array(scene._mesh.points[lod.faces[:, 0]], dtype=float)
    moved = np.linalg.norm(after - before, axis=1)
    assert moved.max() > 0.5  # the sphere 0.5 m out swings a quarter turn
    scene.view_iso()
    plotter.ren_win.Render()
    centre = np.array(scene._mesh.points[lod.faces].reshape(-1, 3), dtype=float).mean(axis=0)
    x, y = scene.project(centre)
    assert scene.pick(x, y) == "R"
    plotter.close()
