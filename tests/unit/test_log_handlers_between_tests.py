"""pytest's output stays clean: no log handler a test's code attaches outlives the test (tests/conftest.py).

snowflake-ml's ``service_logger.get_logger`` adds a ``StreamHandler(sys.stdout)`` per ``create_service`` while the
root logger is at INFO or below (snowflake/ml/_internal/utils/service_logger.py); the deploy tests call it with
pytest capturing ``sys.stdout``. Here two tests do the same in a pytest run of their own, with this suite's
conftest loaded as a plugin, and that run's output is read whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
INNER_TESTS = '''
from snowflake.ml._internal.utils import service_logger

NAME = "SPCS_LLM.MODELS.HYGIENE_SVC"


def _service_logger():
    return service_logger.get_logger(NAME, service_logger.LogColor.BLUE, operation_id="model_deploy_hygiene")


def test_a_deploy_streams_container_logs(capsys):
    _service_logger().info("model server started")
    assert "model server started" in capsys.readouterr().out


def test_a_later_deploy_of_the_same_service(capsys):
    _service_logger().info("listening on 5000")
    captured = capsys.readouterr()
    assert "listening on 5000" in captured.out  # the record reaches this test's own capture...
    assert "Logging error" not in captured.err  # ...and no handler tries the first test's, closed by now
'''


def test_a_handler_bound_to_one_tests_capture_does_not_log_into_the_next(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                   "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}  # snowflake-ml's log files
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q",
                          "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
                         capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "2 passed" in output
    assert "Logging error" not in output and "closed file" not in output
    assert "\x1b[" not in output and "HYGIENE_SVC" not in output
