"""``spcs-llm local`` end to end: it prints a ready PAT and the exact ``spcs-llm doctor`` commands, and those
commands pass against it as printed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from spcs_llm.cli import main
from spcs_llm.dss.labels import CHAT_COMPONENT, OAUTH_PRESET, SERVICE_PRESET, component_form, preset_form
from spcs_standin.settings import ADMIN_SECRET_ENV
from spcs_standin.tinychat import DOCTOR_EXCHANGE

PYTHON_LIB = Path(__file__).resolve().parents[2] / "python-lib"


@pytest.fixture()
def local_output(tmp_path: Path) -> Iterator[list[str]]:
    """The lines ``spcs-llm local`` prints at start-up, up to its last one (the control API)."""
    env = {name: value for name, value in os.environ.items() if name != ADMIN_SECRET_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYTHON_LIB), os.environ.get("PYTHONPATH")]))
    with open(tmp_path / "stderr.log", "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "spcs_llm.cli", "local"], stdout=subprocess.PIPE,
                                   stderr=stderr, text=True, env=env)
    watchdog = threading.Timer(180, process.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Control API:"):
                break
        assert lines and lines[-1].startswith("Control API:"), (tmp_path / "stderr.log").read_text()
        yield lines
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=30)


def printed_commands(lines: list[str]) -> tuple[str, list[list[str]]]:
    """The PAT from the printed ``export`` line, and each printed doctor command as argv."""
    (export,) = [line.strip() for line in lines if line.strip().startswith("export SNOWFLAKE_TOKEN=")]
    pat = shlex.split(export)[1].partition("=")[2]
    doctors = [shlex.split(line) for line in lines if line.strip().startswith("spcs-llm doctor ")]
    return pat, doctors


def test_local_prints_a_pat_and_doctor_commands_that_pass(local_output, capsys, monkeypatch):
    pat, doctors = printed_commands(local_output)
    assert pat.startswith("ver:1-") and len(doctors) == 2
    assert all("--role" in argv and argv[argv.index("--role") + 1] == "SPCS_LLM_USER" for argv in doctors)
    monkeypatch.setenv("SNOWFLAKE_TOKEN", pat)
    capsys.readouterr()
    for argv in doctors:
        code = main(argv[1:])
        text = capsys.readouterr().out
        assert code == 0, text
        assert "✗" not in text and "DSS connection settings that worked" in text
        if "--kind" not in argv:
            assert f"✓ Real call: the reply {DOCTOR_EXCHANGE.answer!r}" in text


def test_local_labels_its_settings_as_dss_does(local_output):
    text = "\n".join(local_output)
    oauth, chat = preset_form(OAUTH_PRESET), component_form(CHAT_COMPONENT)
    assert f"Preset '{oauth.title}':" in text and f"Preset '{preset_form(SERVICE_PRESET).title}':" in text
    assert f"    {oauth.label('scope')}:" in text and "session:role:SPCS_LLM_USER" in text
    assert f"{chat.label('protocol')}: {chat.shown('protocol', 'openai_chat')}" in text
    assert "\n    scope:" not in text and "protocol: openai_chat" not in text
