"""Plant geometry: mesh files, robot descriptions (URDF), kinematics, and the merged plant ready to draw.

Between the layout model (``viewer.model``, pure data) and the scene (``viewer.scene``, VTK): Qt-free and
VTK-free, numpy and trimesh only. ``mesh_library`` loads mesh files safely; ``urdf`` reads robot
descriptions; ``parts`` holds the primitives robots are drawn from; ``kinematics`` poses chains;
``plant`` merges every component into one triangle soup with per-face colours; ``reach`` and ``validate``
answer what needs meshes (a robot's reach, whether a layout's files open).
"""
