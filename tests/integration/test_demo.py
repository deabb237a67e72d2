"""``make demo`` (``python -m spcs_llm.local.demo``), end to end in a subprocess: nothing on stderr (no library
warnings, progress bars or tracebacks) and sensible output (every template family gives the canned reply, the
LoRA adapter gives its trained reply where the base model gives its own, the knowledge bank finds the right
document)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from spcs_llm.local.demo import server_side_services
from spcs_llm.local.lora_engine import ADAPTER_ALIAS, FINETUNE_EXAMPLE
from spcs_llm.local.quiet import QUIET_ENVIRONMENT
from spcs_llm.local.settings import StandinSettings
from spcs_llm.local.tinychat import CANNED_EXCHANGES
from spcs_llm.templates import FAMILY_NAMES

PYTHON_LIB = Path(__file__).resolve().parents[2] / "python-lib"


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    # The demo must quiet the libraries itself: nothing in the environment may do it for it.
    env = {name: value for name, value in os.environ.items() if name not in QUIET_ENVIRONMENT}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYTHON_LIB), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "spcs_llm.local.demo", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def reply_of(output: str, label: str) -> str:
    found = re.search(rf"^  {re.escape(label)} +→ (.*)$", output, re.MULTILINE)
    assert found, f"no line for {label!r} in:\n{output}"
    return found.group(1)


def test_the_demo_is_quiet_and_every_family_answers_sensibly():
    done = run_demo()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    greeting = repr(CANNED_EXCHANGES[0].answer)
    server_side = set(server_side_services(StandinSettings()).values())
    assert server_side >= {"zephyr", "llama2", "mistral"}
    for family in server_side:
        assert reply_of(done.stdout, f"server-side {family}") == greeting
    for family in FAMILY_NAMES:
        assert reply_of(done.stdout, f"client-side {family}") == greeting
    assert f"chunk: {CANNED_EXCHANGES[1].answer!r}" in done.stdout
    base_color = next(e.answer for e in CANNED_EXCHANGES if e.question == FINETUNE_EXAMPLE.instruction)
    assert reply_of(done.stdout, "base model") == repr(base_color)
    assert reply_of(done.stdout, f"adapter {ADAPTER_ALIAS}") == repr(FINETUNE_EXAMPLE.output)
    assert re.search(r"^  trained in \d+ steps, \d+\.\d s on CPU; loss \d+\.\d+ → \d+\.\d+$", done.stdout,
                     re.MULTILINE)
    best = re.search(r"^  1\. \(\d\.\d+\) (.*)$", done.stdout, re.MULTILINE)
    assert best and "authorises Snowflake once" in best.group(1)
    assert re.search(r"^Demo finished in \d+\.\d s\.$", done.stdout, re.MULTILINE)
