"""``spcs-llm`` runs in the environments users have: the notebooks' deployment env (notebooks/requirements.txt) and
the plugin's DSS code env (code-env/python/spec/requirements.txt), each built clean. ``--help`` lists every command
without importing them; each command imports only its own module; argument errors are one line with their fix,
before any connection; ``spcs-llm local`` outside the dev env says what to install."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from clean_envs import plugin_lib_environment

from spcs_llm.cli import COMMANDS, DEPLOY_ENV, PLUGIN_ENV, Command, build_parser, main

ENV_TIMEOUT = pytest.mark.timeout(900)  # the first test to use an env builds it (seconds with uv, a minute with pip)
DEPLOYMENT_COMMANDS = [name for name, command in COMMANDS.items() if command.requirements == DEPLOY_ENV]
# Runs `<command> --help` for each command given in one interpreter, importing only spcs_llm.cli first, and prints
# {command: [exit status, first line of the help]}.
HELP_PROBE = """
import contextlib, io, json, sys
from spcs_llm.cli import main
report = {}
for command in sys.argv[1:]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main([command, "--help"])
        code = 0
    except SystemExit as stop:
        code = stop.code
    report[command] = [code, out.getvalue().splitlines()[0] if out.getvalue() else ""]
print(json.dumps(report))
"""


def spcs_llm(python: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "spcs_llm.cli", *argv], capture_output=True, text=True, timeout=120,
                          env=plugin_lib_environment())


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and " Fix: " in lines[0] and "Traceback" not in result.stderr
    return lines[0]


def assert_every_help_works(python: Path, commands: list[str]) -> None:
    probe = subprocess.run([str(python), "-c", HELP_PROBE, *commands], capture_output=True, text=True, timeout=300,
                           env=plugin_lib_environment(), check=True)
    report = json.loads(probe.stdout)
    assert sorted(report) == sorted(commands)
    assert all(code == 0 and first.startswith(f"usage: spcs-llm {name} ") for name, (code, first) in report.items()), \
        report


def assert_local_names_what_to_install(python: Path) -> None:
    line = assert_one_error_line(spcs_llm(python, "local"))
    assert "tests/requirements.txt" in line and "make venv" in line
    assert "uvicorn" in line and "torch" in line


def test_the_help_lists_every_command_with_the_summary_its_module_gives_it():
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    assert helps == {name: command.summary for name, command in COMMANDS.items()}
    assert set(DEPLOYMENT_COMMANDS) >= {"setup-sql", "deploy", "status", "teardown", "finetune", "serve-adapters",
                                        "batch", "cortex-finetune"}
    assert COMMANDS["doctor"].requirements == PLUGIN_ENV


def test_the_help_imports_no_commands_module_and_a_command_only_its_own():
    code = ("import sys\nfrom spcs_llm.cli import main\n"
            "for argv in (['--help'], ['teardown', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "    print('imported', json.dumps(sorted(m for m in sys.modules if m.startswith(('spcs_llm.deploy.', "
            "'spcs_llm.cli.', 'spcs_standin.')) or m == 'spcs_llm.spcs.doctor')))\n")
    result = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True,
                            timeout=120, env=plugin_lib_environment(), check=True)
    after_help, after_teardown = (json.loads(line.partition(" ")[2]) for line in result.stdout.splitlines()
                                  if line.startswith("imported "))
    assert after_help == []
    assert "spcs_llm.cli.services" in after_teardown
    assert not {"spcs_llm.spcs.doctor", "spcs_llm.cli.doctor", "spcs_llm.cli.local", "spcs_llm.cli.batch",
                "spcs_llm.cli.finetune"} & set(after_teardown)


def test_a_commands_module_missing_a_package_is_one_line_naming_its_requirements(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "status", Command("spcs_llm_not_installed", "status", DEPLOY_ENV))
    assert main(["status", "--json"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: spcs-llm status needs the Python package 'spcs_llm_not_installed'")
    assert "Fix: pip install -r notebooks/requirements.txt" in line
    with pytest.raises(ModuleNotFoundError):
        main(["--debug", "status"])


@ENV_TIMEOUT
def test_the_deployment_commands_run_in_a_clean_notebooks_env(deploy_env_python):
    top = spcs_llm(deploy_env_python, "--help")
    assert top.returncode == 0 and all(name in top.stdout for name in COMMANDS), top.stderr
    assert_every_help_works(deploy_env_python, [*DEPLOYMENT_COMMANDS, "doctor"])
    # Arguments are checked before any connection to Snowflake: one line, no traceback.
    assert "'bad name!'" in assert_one_error_line(spcs_llm(deploy_env_python, "deploy", "bad name!"))
    assert_local_names_what_to_install(deploy_env_python)


@ENV_TIMEOUT
def test_doctor_runs_in_a_clean_plugin_env(plugin_env_python):
    top = spcs_llm(plugin_env_python, "--help")
    assert top.returncode == 0 and all(name in top.stdout for name in COMMANDS), top.stderr
    assert_every_help_works(plugin_env_python, ["doctor"])
    # A missing key is reported as the doctor reports a failed check, without any connection.
    refused = spcs_llm(plugin_env_python, "doctor", "--endpoint", "https://x.invalid", "--auth", "keypair")
    assert refused.returncode == 1 and "✗ Credentials" in refused.stdout and "Fix:" in refused.stdout
    assert "Traceback" not in refused.stderr
    usage = spcs_llm(plugin_env_python, "doctor", "--kind", "chat")
    assert usage.returncode == 2 and "the following arguments are required: --endpoint" in usage.stderr
    assert_local_names_what_to_install(plugin_env_python)
