"""The one background-task helper: the newest run's result is delivered, a superseded one never."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.gui


def test_a_superseded_run_is_dropped_and_failures_and_progress_reach_the_gui_thread(qtbot):
    from viewer.ui.app import create_application
    from viewer.ui.background import BackgroundTask

    create_application()
    task = BackgroundTask("test")
    release_first = threading.Event()
    results, errors, progress = [], [], []

    def slow(context):
        release_first.wait(10)
        return ("first", context.cancelled())

    task.run(slow, results.append)
    task.run(lambda context: (context.progress(0.5), "second")[1], results.append, progress=progress.append)
    qtbot.waitUntil(lambda: results == ["second"], timeout=5_000)
    assert progress == [0.5]
    release_first.set()  # the first now finishes, later and superseded: dropped, and it knew
    seen_first = []
    task.run(lambda context: 1 / 0, seen_first.append, errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5_000)
    assert isinstance(errors[0], ZeroDivisionError) and not seen_first
    assert results == ["second"] and not task.running
    release_late = threading.Event()
    task.run(lambda context: (release_late.wait(10), "late")[1], results.append)
    task.cancel()
    with qtbot.waitSignal(task._finished, timeout=5_000):  # it finished, after its cancel
        release_late.set()
    assert results == ["second"]
