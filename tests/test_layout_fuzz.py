"""Fuzzing the layout loader, validator, checks, geometry and simulation model (see layout_fuzz.py): every
mutated document is a usable layout or a clear LayoutError / MeshError, never another exception."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from layout_fuzz import mutated_documents, open_document  # noqa: E402


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(doc=mutated_documents())
def test_a_mutated_layout_is_opened_or_refused_with_a_reason(doc, tmp_path):
    assert open_document(doc, tmp_path) in ("ok", "refused", "no simulation", "unwritable")


@pytest.fixture(scope="module")
def mesh_folder(tmp_path_factory):
    from layout_fuzz import mesh_seeds

    folder = tmp_path_factory.mktemp("meshes")
    return folder, mesh_seeds(folder)


def test_a_mutated_mesh_file_loads_or_is_refused_with_a_reason(mesh_folder):
    from hypothesis import strategies as st
    from layout_fuzz import mutated_mesh_bytes, open_mesh

    folder, seeds = mesh_folder

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=st.data())
    def run(case):
        kind, data = case.draw(mutated_mesh_bytes(seeds))
        assert open_mesh(kind, data, folder) in ("ok", "refused")

    run()
