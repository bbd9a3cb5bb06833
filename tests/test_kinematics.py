"""URDF loading and forward kinematics, checked against code and arithmetic nobody here wrote.

- Two published robot descriptions (KUKA LBR iiwa 14, Franka Panda; ``../shared/data/robots``,
  copied from pybullet's data) are posed at random joint vectors within their limits, and
  every link's frame is compared with ``yourdfpy``, an independent URDF implementation.
- Small robots written by the test (a planar two-link arm, a lift, a turntable) are checked
  against closed-form positions worked out by hand.
- Refusals use real files: meshes that climb out of the URDF's folder, a symbolic link pointing
  outside, malformed XML, a billion-laughs entity bomb, cycles and broken trees.

No mocks: every URDF and mesh here is a real file in ``tmp_path``.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from viewer.geometry.kinematics import (
    ARM6_FRAME_LINKS,
    KinematicChain,
    KinematicsError,
    arm6_chain,
    arm6_joint_list,
    urdf_visual_parts,
)
from viewer.geometry.mesh_library import MeshLibrary
from viewer.geometry.plant import ROBOT_HOME_DEG, robot_link_transforms
from viewer.geometry.urdf import UrdfError, load_urdf, parse_urdf, resolve_mesh_filename

ROBOTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "robots"
IIWA = ROBOTS / "kuka_iiwa" / "model.urdf"
PANDA = ROBOTS / "franka_panda" / "panda.urdf"


def real_robot(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"real robot data not found at {path} (shared data folder absent)")
    return path


def write_urdf(folder: Path, body: str, name: str = "robot.urdf") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'<?xml version="1.0"?>\n<robot name="test">\n{body}\n</robot>\n', encoding="utf-8")
    return path


def write_stl(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.creation.box(extents=(0.1, 0.1, 0.1)).export(path)
    return path


def mesh_link(name: str, filename: str) -> str:
    return f'<link name="{name}"><visual><geometry><mesh filename="{filename}"/></geometry></visual></link>'


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# --------------------------------------------------------------------------- real robots vs yourdfpy


@pytest.mark.parametrize("path", [IIWA, PANDA], ids=["kuka_iiwa", "franka_panda"])
def test_real_robot_link_frames_match_yourdfpy(path):
    yourdfpy = pytest.importorskip("yourdfpy")
    path = real_robot(path)
    chain = KinematicChain.from_urdf(load_urdf(path))
    oracle = yourdfpy.URDF.load(str(path), load_meshes=False, build_collision_scene_graph=False)
    # Same joint vector on both sides (mimic joints, the Panda's second finger, are driven, not given).
    assert list(chain.joint_names) == list(oracle.actuated_joint_names)

    rng = np.random.default_rng(20240611)
    samples = rng.uniform(chain.lower, chain.upper, size=(50, chain.n_joints))
    ours = chain.forward_batch(samples)
    worst = 0.0
    for q, frames in zip(samples, ours, strict=True):
        oracle.update_cfg(q)
        np.testing.assert_allclose(frames[chain.end_effector_index], oracle.get_transform(chain.end_effector),
                                   atol=1e-9, rtol=0)
        for index, link in enumerate(chain.link_names):
            expected = oracle.get_transform(link)
            worst = max(worst, float(np.abs(frames[index] - expected).max()))
            np.testing.assert_allclose(frames[index], expected, atol=1e-9, rtol=0, err_msg=link)
    assert worst < 1e-9


def test_real_robot_structure_as_written_in_the_files():
    iiwa = load_urdf(real_robot(IIWA))
    chain = KinematicChain.from_urdf(iiwa)
    assert chain.n_joints == 7 and chain.n_links == 8
    assert chain.link_names[0] == "lbr_iiwa_link_0" and chain.end_effector == "lbr_iiwa_link_7"
    # Values read off the file by eye: joint 1 is +-2.96705972839 rad, joint 7 +-3.05432619099, velocity 10.
    assert chain.lower[0] == -2.96705972839 and chain.upper[6] == 3.05432619099
    assert np.all(chain.velocity == 10) and np.all(chain.angular)
    assert iiwa.link("lbr_iiwa_link_1").visuals[0].mesh_path == (IIWA.parent / "meshes" / "link_1.obj").resolve()
    assert iiwa.link("lbr_iiwa_link_0").visuals[0].rgba == (0.2, 0.2, 0.2, 1.0)  # material "Grey" by name

    panda = load_urdf(real_robot(PANDA))
    chain = KinematicChain.from_urdf(panda)
    # 7 arm joints + finger_joint1; finger_joint2 mimics it and is not in the vector.
    assert chain.n_joints == 8 and "panda_finger_joint2" not in chain.joint_names
    assert chain.joint_types[-1] == "prismatic" and not chain.angular[-1]
    assert (chain.lower[-1], chain.upper[-1]) == (0.0, 0.04)
    # Deepest leaf attached by a fixed joint: the grasp target, not a finger.
    assert chain.end_effector == "panda_grasptarget"
    # package://meshes/visual/link1.obj resolves inside the URDF's folder.
    assert panda.link("panda_link1").visuals[0].mesh_path == (PANDA.parent / "meshes/visual/link1.obj").resolve()
    for link in panda.links:
        for visual in link.visuals:
            assert visual.mesh_path is not None and visual.mesh_path.is_file()
            assert visual.mesh_path.is_relative_to(PANDA.parent.resolve())


def test_panda_fingers_open_symmetrically_through_the_mimic_joint():
    chain = KinematicChain.from_urdf(real_robot(PANDA))
    q = chain.home.copy()
    q[-1] = 0.03
    frames = chain.forward(q)
    hand = frames[chain.link_index("panda_hand")]
    left = np.linalg.inv(hand) @ frames[chain.link_index("panda_leftfinger")]
    right = np.linalg.inv(hand) @ frames[chain.link_index("panda_rightfinger")]
    # In the hand's frame: both 0.0584 up, 3 cm out along +y and -y (axes 0 1 0 and 0 -1 0 in the file).
    np.testing.assert_allclose(left[:3, 3], [0, 0.03, 0.0584], atol=1e-12)
    np.testing.assert_allclose(right[:3, 3], [0, -0.03, 0.0584], atol=1e-12)


def test_iiwa_visual_parts_sit_on_their_links():
    iiwa = load_urdf(real_robot(IIWA))
    chain = KinematicChain.from_urdf(iiwa)
    q = np.linspace(-0.5, 0.5, chain.n_joints)
    parts = urdf_visual_parts(iiwa, chain, MeshLibrary(), q)
    frames = chain.forward(q)
    assert len(parts) == sum(len(link.visuals) for link in iiwa.links) == 8
    assert sorted(p.link for p in parts) == list(range(8))
    for part in parts:
        visual = iiwa.link(chain.link_names[part.link]).visuals[0]
        np.testing.assert_allclose(part.transform, frames[part.link] @ visual.origin, atol=1e-12)
        assert part.mesh.n_triangles > 100
    assert {round(p.shade, 3) for p in parts} == {round(0.6 + 0.6 * 0.2, 3), round(0.6 + 0.6 * (
        0.2126 * 0.5 + 0.7152 * 0.7 + 0.0722 * 1.0), 3), round(0.6 + 0.6 * (0.2126 + 0.7152 * 0.423529411765 +
                                                                        0.0722 * 0.0392156862745), 3)}


def test_forward_batch_speed_is_reported():
    chain = KinematicChain.from_urdf(real_robot(IIWA))
    samples = np.random.default_rng(1).uniform(chain.lower, chain.upper, size=(1000, chain.n_joints))
    chain.forward_batch(samples)  # warm-up
    times = []
    for _ in range(15):
        start = time.perf_counter()
        chain.forward_batch(samples)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"\nforward_batch: 1,000 samples of the 7-joint iiwa (8 links) in {median * 1e3:.2f} ms "
          f"({median * 1e6 / 1000:.2f} us per sample, median of 15)")


# --------------------------------------------------------------------------- hand-derived robots

L1, L2 = 0.7, 0.4
PLANAR = f"""
<link name="base"/> <link name="upper"/> <link name="lower"/> <link name="tool"/>
<joint name="shoulder" type="revolute">
  <parent link="base"/><child link="upper"/><axis xyz="0 0 1"/>
  <limit lower="-3" upper="3" velocity="2"/>
</joint>
<joint name="elbow" type="revolute">
  <parent link="upper"/><child link="lower"/><origin xyz="{L1} 0 0"/><axis xyz="0 0 2"/>
  <limit lower="-2.5" upper="2.5" velocity="2"/>
</joint>
<joint name="tcp" type="fixed">
  <parent link="lower"/><child link="tool"/><origin xyz="{L2} 0 0"/>
</joint>
"""


def test_planar_two_link_arm_matches_the_closed_form(tmp_path):
    chain = KinematicChain.from_urdf(write_urdf(tmp_path, PLANAR))
    assert chain.joint_names == ("shoulder", "elbow") and chain.end_effector == "tool"
    assert chain.link_names == ("base", "upper", "lower", "tool")
    rng = np.random.default_rng(7)
    for q1, q2 in rng.uniform([-3, -2.5], [3, 2.5], size=(25, 2)):
        pose = chain.end_effector_pose([q1, q2])
        expected = [L1 * math.cos(q1) + L2 * math.cos(q1 + q2), L1 * math.sin(q1) + L2 * math.sin(q1 + q2), 0.0]
        np.testing.assert_allclose(pose[:3, 3], expected, atol=1e-12)
        np.testing.assert_allclose(pose[:3, :3], rot_z(q1 + q2), atol=1e-12)  # the axis "0 0 2" is normalised
        elbow = chain.forward([q1, q2])[chain.link_index("lower")]
        np.testing.assert_allclose(elbow[:3, 3], [L1 * math.cos(q1), L1 * math.sin(q1), 0.0], atol=1e-12)
    np.testing.assert_allclose(chain.end_effector_pose([math.pi / 2, -math.pi / 2])[:3, 3], [L2, L1, 0], atol=1e-12)


def test_prismatic_joint_moves_along_its_axis_in_the_rotated_joint_frame(tmp_path):
    # The joint frame is rolled +90 deg about x, so its z axis points along world -y.
    body = """
    <link name="rail"/> <link name="carriage"/>
    <joint name="slide" type="prismatic">
      <parent link="rail"/><child link="carriage"/>
      <origin xyz="1 2 3" rpy="1.5707963267948966 0 0"/><axis xyz="0 0 1"/>
      <limit lower="0" upper="0.5" velocity="0.25"/>
    </joint>"""
    chain = KinematicChain.from_urdf(write_urdf(tmp_path, body))
    assert chain.joint_types == ("prismatic",) and not chain.angular[0]
    for d in (0.0, 0.2, 0.5):
        frame = chain.forward([d])[1]
        np.testing.assert_allclose(frame[:3, 3], [1, 2 - d, 3], atol=1e-12)
        np.testing.assert_allclose(frame[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    # Layout units leave metres alone.
    np.testing.assert_array_equal(chain.from_layout_units([0.3]), [0.3])


def test_fixed_joint_is_a_constant_offset(tmp_path):
    body = """
    <link name="flange"/> <link name="gripper"/> <link name="tip"/>
    <joint name="mount" type="fixed">
      <parent link="flange"/><child link="gripper"/><origin xyz="0 0 0.1" rpy="0 0 1.5707963267948966"/>
    </joint>
    <joint name="finger" type="fixed">
      <parent link="gripper"/><child link="tip"/><origin xyz="0.2 0 0"/>
    </joint>"""
    chain = KinematicChain.from_urdf(write_urdf(tmp_path, body))
    assert chain.n_joints == 0 and chain.end_effector == "tip"
    frames = chain.forward(np.empty(0))
    np.testing.assert_allclose(frames[2][:3, 3], [0, 0.2, 0.1], atol=1e-12)  # +x of the gripper is world +y
    np.testing.assert_allclose(frames[2][:3, :3], rot_z(math.pi / 2), atol=1e-12)
    assert chain.forward_batch(np.empty((3, 0))).shape == (3, 3, 4, 4)


def test_continuous_joint_has_no_limits_and_turns_the_short_way(tmp_path):
    body = """
    <link name="floor"/> <link name="table"/> <link name="fixture"/>
    <joint name="turntable" type="continuous">
      <parent link="floor"/><child link="table"/><origin xyz="0 0 0.8"/><axis xyz="0 0 1"/>
    </joint>
    <joint name="bolt" type="fixed"><parent link="table"/><child link="fixture"/><origin xyz="0.5 0 0"/></joint>"""
    chain = KinematicChain.from_urdf(write_urdf(tmp_path, body))
    assert chain.lower[0] == -np.inf and chain.upper[0] == np.inf
    clamped, flags = chain.clamp([100.0])
    assert clamped[0] == 100.0 and not flags[0]
    a = 0.3
    np.testing.assert_allclose(chain.forward([a + 4 * math.pi]), chain.forward([a]), atol=1e-12)
    np.testing.assert_allclose(chain.forward([a])[2][:3, 3], [0.5 * math.cos(a), 0.5 * math.sin(a), 0.8], atol=1e-12)
    # 350 deg -> 10 deg passes through 0 (360), not through 180.
    q0, q1 = chain.from_layout_units([350.0]), chain.from_layout_units([10.0])
    half = chain.interpolate(0.5, 0.0, q0, 1.0, q1)
    assert math.isclose(math.cos(half[0]), 1.0, abs_tol=1e-12)


# --------------------------------------------------------------------------- clamp, interpolate, batch


def test_clamp_moves_values_into_limits_and_flags_them():
    chain = KinematicChain.from_urdf(real_robot(IIWA))
    lo, hi = chain.lower, chain.upper
    q = (lo + hi) / 2
    q[0] = hi[0] + 0.5  # above
    q[3] = lo[3] - 1.0  # below
    q[5] = np.nan  # a broken sample
    q[6] = hi[6]  # exactly at the limit: fine
    clamped, flags = chain.clamp(q)
    assert flags.tolist() == [True, False, False, True, False, True, False]
    assert clamped[0] == hi[0] and clamped[3] == lo[3] and clamped[5] == 0.0 and clamped[6] == hi[6]
    assert np.all(clamped >= lo) and np.all(clamped <= hi)
    batch, batch_flags = chain.clamp(np.stack([q, (lo + hi) / 2]))
    assert batch_flags.sum(axis=1).tolist() == [3, 0]
    np.testing.assert_array_equal(batch[0], clamped)
    with pytest.raises(KinematicsError, match="7 joint values"):
        chain.clamp([0.0, 0.0])


def test_interpolate_is_linear_with_a_clamped_parameter():
    chain = KinematicChain.from_urdf(real_robot(IIWA))
    q0 = np.zeros(7)
    q1 = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(chain.interpolate(10.25, 10.0, q0, 11.0, q1), 0.25 * q1)
    np.testing.assert_array_equal(chain.interpolate(9.0, 10.0, q0, 11.0, q1), q0)  # before the first sample
    np.testing.assert_array_equal(chain.interpolate(12.0, 10.0, q0, 11.0, q1), q1)  # no extrapolation
    np.testing.assert_array_equal(chain.interpolate(10.0, 10.0, q0, 10.0, q1), q1)  # degenerate interval
    # Frames along the way change continuously: 60 frames over one second never jump far.
    frames = chain.forward_batch(np.array([chain.interpolate(t, 0.0, q0, 1.0, q1) for t in np.linspace(0, 1, 61)]))
    steps = np.linalg.norm(np.diff(frames[:, chain.end_effector_index, :3, 3], axis=0), axis=1)
    assert steps.max() < 0.05


def test_forward_batch_equals_a_loop_of_forward():
    chain = KinematicChain.from_urdf(real_robot(PANDA))
    samples = np.random.default_rng(3).uniform(chain.lower, chain.upper, size=(64, chain.n_joints))
    looped = np.stack([chain.forward(q) for q in samples])
    np.testing.assert_allclose(chain.forward_batch(samples), looped, atol=1e-15, rtol=0)
    assert chain.forward_batch(samples).shape == (64, 13, 4, 4)
    with pytest.raises(KinematicsError, match="shape"):
        chain.forward(samples)
    with pytest.raises(KinematicsError, match="shape"):
        chain.forward_batch(samples[:, :3])


# --------------------------------------------------------------------------- the built-in arm


def _arm6_by_hand(joints_deg, reach):
    """The built-in arm's frames composed by hand from its drawing: pedestal 0.45 m, shoulder 0.3 m, upper arm
    0.75 k, forearm 0.7 k (k = reach / 1.6); j1 about z, j2 and j3 about y, j4 about x, j5 about y, j6 about x."""
    def rot(axis, deg):
        c, s_ = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        m = np.eye(4)
        i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s_, s_, c
        return m

    def move(x=0.0, z=0.0):
        m = np.eye(4)
        m[0, 3], m[2, 3] = x, z
        return m

    k = reach / 1.6
    j1, j2, j3, j4, j5, j6 = joints_deg
    turret = move(z=0.45) @ rot("z", j1)
    upper_arm = turret @ move(z=0.3) @ rot("y", j2)
    forearm = upper_arm @ move(z=0.75 * k) @ rot("y", j3)
    wrist = forearm @ move(x=0.7 * k) @ rot("x", j4) @ rot("y", j5)
    return [np.eye(4), turret, upper_arm, forearm, wrist, wrist @ rot("x", j6)]


def test_the_built_in_arm_has_one_forward_kinematics_and_it_matches_the_hand_composed_frames():
    # robot_link_transforms (what the scene draws) is the chain's forward kinematics; both against the
    # frames composed by hand.
    rng = np.random.default_rng(11)
    for reach in (1.6, 2.3):
        chain = arm6_chain(reach)
        pick = chain.link_indices(ARM6_FRAME_LINKS)
        lower_deg, upper_deg = chain.to_layout_units(chain.lower), chain.to_layout_units(chain.upper)
        for joints_deg in rng.uniform(lower_deg, upper_deg, size=(30, 6)):
            expected = np.array(_arm6_by_hand(tuple(joints_deg), reach))
            ours = chain.forward(chain.from_layout_units(joints_deg))[pick]
            np.testing.assert_allclose(ours, expected, atol=1e-12)
            np.testing.assert_allclose(np.array(robot_link_transforms(tuple(joints_deg), reach)), expected,
                                       atol=1e-12)
    chain = arm6_chain()
    np.testing.assert_allclose(chain.to_layout_units(chain.home), ROBOT_HOME_DEG)
    assert chain.end_effector == "flange" and chain.joint_names == ("j1", "j2", "j3", "j4", "j5", "j6")
    assert chain.upper[0] == pytest.approx(math.radians(185))


def test_joint_list_errors_name_the_joint_and_field():
    good = arm6_joint_list()
    cases = [
        (1, {"axis": [0, 0, 0]}, r"joints\[1\]\.axis: must not be zero"),
        (2, {"limits": None}, r"joints\[2\]\.limits: a revolute joint needs"),
        (0, {"type": "ball"}, r"joints\[0\]\.type: unknown joint type 'ball'"),
        (3, {"xyz": [1, 2]}, r"joints\[3\]\.xyz: expected 3 finite numbers"),
        (4, {"limits": [10, -10]}, r"joints\[4\]\.limits: lower 10\.0 is above upper"),
        (5, {"colour": "red"}, r"joints\[5\]: unknown field\(s\) colour"),
        (2, {"parent": "nowhere"}, r"parent link 'nowhere' is not defined"),
    ]
    for index, change, message in cases:
        joints = [dict(j) for j in good]
        joints[index].update(change)
        joints[index] = {k: v for k, v in joints[index].items() if v is not None}
        with pytest.raises(KinematicsError, match=message):
            KinematicChain.from_joint_list(joints)
    with pytest.raises(KinematicsError, match="home pose is outside the limits of j2"):
        KinematicChain.from_joint_list(good, home_deg=[0, 170, 0, 0, 0, 0])


def test_joint_list_branches_and_degrees():
    joints = [
        {"name": "lift", "type": "prismatic", "axis": [0, 0, 1], "limits": [0, 1.5], "child": "carriage"},
        {"name": "swing", "type": "revolute", "xyz": [0.5, 0, 0], "rpy": [0, 0, 90], "limits": [-90, 90],
         "child": "arm"},
        {"name": "lamp", "type": "fixed", "parent": "carriage", "xyz": [0, 0, 0.2], "child": "beacon"},
    ]
    chain = KinematicChain.from_joint_list(joints, base="column", end_effector="arm")
    q = chain.from_layout_units([1.0, 30.0])
    assert q[0] == 1.0 and q[1] == pytest.approx(math.pi / 6)
    frames = chain.forward(q)
    arm = frames[chain.link_index("arm")]
    np.testing.assert_allclose(arm[:3, 3], [0.5, 0, 1.0], atol=1e-12)
    np.testing.assert_allclose(arm[:3, :3], rot_z(math.radians(90 + 30)), atol=1e-12)
    np.testing.assert_allclose(frames[chain.link_index("beacon")][:3, 3], [0, 0, 1.2], atol=1e-12)
    np.testing.assert_allclose(chain.to_layout_units(q), [1.0, 30.0])


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("filename", "why"), [
    ("../../x.stl", "climbs out of the URDF's folder"),
    ("meshes/../../x.stl", "climbs out of the URDF's folder"),
    ("/etc/passwd", "absolute paths are refused"),
    ("C:\\Windows\\x.stl", "absolute paths are refused"),
    ("package://../x.stl", "climbs out of the URDF's folder"),
    ("package://pkg/../../x.stl", "climbs out of the URDF's folder"),
    ("file:///etc/x.stl", "only relative paths and package:// URIs"),
    ("https://example.invalid/x.stl", "only relative paths and package:// URIs"),
])
def test_mesh_paths_that_leave_the_urdf_folder_are_refused(tmp_path, filename, why):
    write_stl(tmp_path / "x.stl")  # a real file one level up, so refusal is not just "not found"
    robot_dir = tmp_path / "robot"
    urdf = write_urdf(robot_dir, mesh_link("base", filename))
    for check in (True, False):  # confinement holds even when mesh checks are off
        with pytest.raises(UrdfError, match=why) as caught:
            load_urdf(urdf, check_meshes=check)
        assert "link 'base', visual 0" in str(caught.value) and str(urdf) in str(caught.value)


def test_symbolic_link_pointing_outside_is_refused(tmp_path):
    outside = write_stl(tmp_path / "secret" / "outside.stl")
    robot_dir = tmp_path / "robot"
    (robot_dir / "meshes").mkdir(parents=True)
    try:
        os.symlink(outside, robot_dir / "meshes" / "link.stl")
    except OSError:
        pytest.skip("symbolic links not available")
    with pytest.raises(UrdfError, match="resolves outside the URDF's folder"):
        load_urdf(write_urdf(robot_dir, mesh_link("base", "meshes/link.stl")))


def test_mesh_filenames_resolve_inside_the_folder(tmp_path):
    stl = write_stl(tmp_path / "meshes" / "part.stl").resolve()
    assert resolve_mesh_filename("meshes/part.stl", tmp_path) == stl
    assert resolve_mesh_filename("package://meshes/part.stl", tmp_path) == stl  # Panda's form
    assert resolve_mesh_filename("package://my_robot/meshes/part.stl", tmp_path) == stl  # package name dropped
    assert resolve_mesh_filename("./meshes\\part.stl", tmp_path) == stl
    with pytest.raises(UrdfError, match="file not found"):
        resolve_mesh_filename("meshes/missing.stl", tmp_path)
    (tmp_path / "meshes" / "part.3ds").write_text("3ds")
    with pytest.raises(UrdfError, match=r"unsupported mesh format '\.3ds'.*convert it"):
        resolve_mesh_filename("meshes/part.3ds", tmp_path)
    assert resolve_mesh_filename("meshes/part.3ds", tmp_path, must_exist=False).name == "part.3ds"
    (tmp_path / "meshes" / "part.dae").write_text("<COLLADA/>")  # COLLADA: most published robots' visuals
    assert resolve_mesh_filename("meshes/part.dae", tmp_path).name == "part.dae"


def test_missing_mesh_names_the_link(tmp_path):
    urdf = write_urdf(tmp_path, mesh_link("base", "meshes/none.stl"))
    with pytest.raises(UrdfError, match=r"link 'base', visual 0: mesh 'meshes/none.stl': file not found"):
        load_urdf(urdf)
    assert load_urdf(urdf, check_meshes=False).links[0].visuals[0].mesh_path == (tmp_path / "meshes/none.stl")


def test_malformed_xml_says_where(tmp_path):
    path = tmp_path / "broken.urdf"
    path.write_text('<robot name="r">\n  <link name="a">\n</robot>\n', encoding="utf-8")
    with pytest.raises(UrdfError, match=r"broken\.urdf: malformed XML at line 3"):
        load_urdf(path)
    with pytest.raises(UrdfError, match="file not found"):
        load_urdf(tmp_path / "absent.urdf")
    with pytest.raises(UrdfError, match="expected <robot>"):
        parse_urdf("<sdf/>", tmp_path)


def test_billion_laughs_is_refused_not_expanded(tmp_path):
    lol = ['<!ENTITY lol0 "lol">']
    lol += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    path = tmp_path / "bomb.urdf"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE robot [\n' + "\n".join(lol) + "\n]>\n"
                    '<robot name="&lol9;"><link name="a"/></robot>\n', encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(UrdfError, match="refused: the file declares XML entities"):
        load_urdf(path)
    assert time.perf_counter() - start < 1.0


def test_external_entity_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("password")
    path = tmp_path / "xxe.urdf"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE robot [<!ENTITY x SYSTEM "secret.txt">]>\n'
                    '<robot name="&x;"><link name="a"/></robot>\n', encoding="utf-8")
    with pytest.raises(UrdfError, match="refused"):
        load_urdf(path)


TWO = '<link name="a"/><link name="b"/>'


def joint(name: str, parent: str, child: str, kind: str = "fixed", extra: str = "") -> str:
    return f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>{extra}</joint>'


@pytest.mark.parametrize(("body", "message"), [
    (TWO + joint("j1", "a", "b") + joint("j2", "b", "a"), r"joints form a cycle: 'a' -\(j1\)-> 'b' -\(j2\)-> 'a'"),
    ('<link name="base"/><link name="b"/><link name="c"/>' + joint("j1", "b", "c") + joint("j2", "c", "b"),
     r"joints form a cycle: 'b' -\(j1\)-> 'c' -\(j2\)-> 'b'"),
    ('<link name="base"/><link name="b"/><link name="c"/>' + joint("j0", "base", "b") + joint("j1", "c", "c"),
     r"joints form a cycle: 'c' -\(j1\)-> 'c'"),
    (TWO + '<link name="c"/>' + joint("j1", "a", "c") + joint("j2", "b", "c"),
     r"link 'c' is the child of two joints \('j1' and 'j2'\)"),
    (TWO + joint("j1", "ghost", "b"), r"joint 'j1': parent link 'ghost' is not defined"),
    (TWO + joint("j1", "a", "ghost"), r"joint 'j1': child link 'ghost' is not defined"),
    (TWO + '<link name="c"/>' + joint("j1", "a", "b"), r"2 root links \('a', 'c'\)"),
    (TWO + joint("j1", "a", "b", "ball"), r"joint 'j1': unknown joint type 'ball'"),
    (TWO + joint("j1", "a", "b", "floating"), r"joint 'j1': joint type 'floating' is not supported"),
    (TWO + joint("j1", "a", "b", "revolute"), r"joint 'j1': a revolute joint needs <limit"),
    (TWO + joint("j1", "a", "b", "revolute", '<limit lower="1" upper="-1"/>'), r"lower 1\.0 is above upper"),
    (TWO + joint("j1", "a", "b", "continuous", '<axis xyz="0 0 0"/>'), r"needs a non-zero axis"),
    (TWO + joint("j1", "a", "b", "continuous", '<origin xyz="0 0"/>'), r"origin xyz must be three numbers"),
    (TWO + joint("j1", "a", "b", "continuous", '<mimic joint="j9"/>'), r"mimics joint 'j9', which is not defined"),
    (TWO + '<link name="a"/>', r"link 'a': two links have this name"),
    ('<link name="a"><visual><geometry><capsule/></geometry></visual></link>', r"unsupported geometry <capsule>"),
    ('<link name="a"><visual><geometry><box size="1 0 1"/></geometry></visual></link>', r"box size must be positive"),
    ('<xacro:macro xmlns:xacro="http://www.ros.org/wiki/xacro" name="m"/><link name="a"/>', r"unexpanded xacro"),
    # today's namespace (ROS-Industrial packages), and a property used without the xacro element around it
    ('<xacro:include xmlns:xacro="http://wiki.ros.org/xacro" filename="x"/><link name="a"/>',
     r"unexpanded xacro element <xacro:include>; run xacro"),
    ('<xacro:property xmlns:xacro="https://wiki.ros.org/xacro/" name="l" value="1"/><link name="a"/>',
     r"unexpanded xacro element <xacro:property>"),
    ('<link name="a"><visual><geometry><box size="${l} 1 1"/></geometry></visual></link>',
     r"unexpanded xacro expression '\$\{l\} 1 1'"),
])
def test_broken_robots_are_refused_with_where_and_why(tmp_path, body, message):
    with pytest.raises(UrdfError, match=message):
        load_urdf(write_urdf(tmp_path, body))


def test_cycle_message_walks_the_loop(tmp_path):
    body = '<link name="base"/><link name="b"/><link name="c"/><link name="d"/>' + joint("j1", "base", "b") + \
        joint("j2", "c", "d") + joint("j3", "d", "c")
    with pytest.raises(UrdfError, match=r"robot\.urdf: joints form a cycle: 'c' -\(j2\)-> 'd' -\(j3\)-> 'c'"):
        load_urdf(write_urdf(tmp_path, body))


def test_primitives_scale_and_materials_are_read(tmp_path):
    write_stl(tmp_path / "m" / "a.stl")
    body = """
    <material name="steel"><color rgba="0.5 0.5 0.6 1"/></material>
    <link name="a">
      <visual><origin xyz="0 0 0.5" rpy="0 1.5707963267948966 0"/>
        <geometry><cylinder radius="0.1" length="1"/></geometry><material name="steel"/></visual>
      <visual><geometry><box size="1 2 3"/></geometry><material name="paint"><color rgba="1 0 0 1"/></material></visual>
      <visual><geometry><sphere radius="0.25"/></geometry><material name="paint"/></visual>
      <visual><geometry><mesh filename="m/a.stl" scale="0.001 0.001 0.001"/></geometry></visual>
      <visual><geometry><mesh filename="m/a.stl" scale="-1 1 1"/></geometry></visual>
    </link>"""
    robot = load_urdf(write_urdf(tmp_path, body))
    cyl, box, sphere, mesh, mirrored = robot.links[0].visuals
    assert (cyl.geometry, cyl.radius, cyl.length, cyl.rgba, cyl.material) == ("cylinder", 0.1, 1.0,
                                                                               (0.5, 0.5, 0.6, 1.0), "steel")
    np.testing.assert_allclose(cyl.origin[:3, :3] @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # pitched: z turns to x
    assert (box.geometry, box.size, box.rgba) == ("box", (1.0, 2.0, 3.0), (1.0, 0.0, 0.0, 1.0))
    assert (sphere.radius, sphere.rgba) == (0.25, (1.0, 0.0, 0.0, 1.0))  # named colour reused
    assert mesh.scale == (0.001, 0.001, 0.001) and mesh.rgba is None and mirrored.scale == (-1.0, 1.0, 1.0)

    chain = KinematicChain.from_urdf(robot)
    parts = urdf_visual_parts(robot, chain, MeshLibrary())
    heights = [p.mesh.vertices[:, 2].max() - p.mesh.vertices[:, 2].min() for p in parts[:3]]
    np.testing.assert_allclose(heights, [1.0, 3.0, 0.5], rtol=0.02)  # centred primitives, URDF sizes
    np.testing.assert_allclose(parts[0].mesh.vertices[:, 2].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(parts[3].transform[:3, :3], np.eye(3) * 0.001)
    # The mirrored mesh keeps its faces outward: winding reversed along with the mirror.
    np.testing.assert_array_equal(parts[4].mesh.faces, parts[3].mesh.faces[:, ::-1])
