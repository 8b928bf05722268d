"""Gaia's Python: the end-to-end tests (tests.e2e), the test harness they, the demo and the
evaluation share (tests.harness), and the evaluation (tests.eval).

One package, imported from the repository's root: scripts run as modules
(``python3 -m tests.harness.demo``, ``python3 -m tests.eval.live``), and pytest finds the package
through ``pythonpath`` in pytest.ini.
"""
