"""The leak guard itself: a test that leaves a thread, a connection or a task open fails."""

from __future__ import annotations

from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py").read_text()


def test_the_guard_fails_tests_that_leak(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_leaky="""
        import asyncio
        import threading
        import apsw

        KEPT = []

        def test_leaks_a_thread():
            stop = threading.Event()
            threading.Thread(target=stop.wait, args=(5,), name="forgotten").start()

        def test_leaks_a_connection():
            KEPT.append(apsw.Connection(":memory:"))

        def test_leaks_a_task(run):
            async def main():
                asyncio.create_task(asyncio.sleep(5), name="orphan")
            run(main())

        def test_tidy():
            stop = threading.Event()
            t = threading.Thread(target=stop.wait)
            t.start()
            stop.set()
            t.join()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "timeout=60")
    # A leak fails at teardown: pytest counts the body as passed and the teardown as an error.
    result.assert_outcomes(passed=3, errors=2, failed=1)
    result.stdout.fnmatch_lines(["ERROR test_leaky.py::test_leaks_a_thread*"])
    result.stdout.fnmatch_lines(["ERROR test_leaky.py::test_leaks_a_connection*"])
    assert "test_tidy - " not in result.stdout.str()
    out = result.stdout.str()
    assert "threads left running: ['forgotten']" in out
    assert "1 apsw connection(s) left open" in out
    assert "tasks left pending: ['orphan']" in out
