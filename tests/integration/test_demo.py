"""``make demo`` (``python -m spcs_standin.demo``), end to end in a subprocess: nothing on stderr (no library
warnings, progress bars or tracebacks) and sensible output (every template family gives the canned reply, the
LoRA adapter gives its trained reply where the base model gives its own, the knowledge bank finds the right
document), and the Cortex part: a reply streamed in several chunks, a tool-call round trip on the model's own call,
Cortex embeddings, and per-token Cortex cost beside SPCS busy-time cost in the usage table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spcs_llm.cortex.config import CortexCostConfig
from spcs_llm.spcs.templates import FAMILY_NAMES
from spcs_standin.cortex_engines import CHAT_MODEL, EMBED_DIMENSIONS, EMBED_MODEL, TOOL_MODEL
from spcs_standin.demo import server_side_services
from spcs_standin.demo_cortex import STREAMED_EXCHANGE, WEATHER_CITY, price_settings
from spcs_standin.lora_engine import ADAPTER_ALIAS, FINETUNE_EXAMPLE
from spcs_standin.quiet import QUIET_ENVIRONMENT
from spcs_standin.settings import StandinSettings
from spcs_standin.tinychat import CANNED_EXCHANGES
from spcs_standin.tinytools import WEATHER_REPORTS

PYTHON_LIB = Path(__file__).resolve().parents[2] / "python-lib"


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    # The demo must quiet the libraries itself: nothing in the environment may do it for it.
    env = {name: value for name, value in os.environ.items() if name not in QUIET_ENVIRONMENT}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYTHON_LIB), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "spcs_standin.demo", *args], env=env, capture_output=True,
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
    assert_the_cortex_part(done.stdout)


def assert_the_cortex_part(output: str) -> None:
    streamed = re.search(r"^== Cortex streaming: .*\n  (.*)\n  (\d+) chunks, in order; first after (\d+\.\d+) s, "
                         r"last after (\d+\.\d+) s$", output, re.MULTILINE)
    assert streamed, output
    text, chunks, first, last = streamed.groups()
    assert text == STREAMED_EXCHANGE.answer and int(chunks) > 1 and float(first) < float(last)

    asked = reply_of(output, "model asks for")
    assert asked.startswith(f'get_weather({{"city": "{WEATHER_CITY}"}}) [call id chatcmpl-tool-')
    assert asked.endswith("finish reason tool_calls]")
    assert reply_of(output, "demo runs the tool locally") == repr(WEATHER_REPORTS[WEATHER_CITY])
    final = f"The weather in {WEATHER_CITY} is: {WEATHER_REPORTS[WEATHER_CITY]}."
    assert reply_of(output, "model, given the tool result") == repr(final)
    assert output.index("  model asks for") < output.index("  demo runs the tool") < output.index("  model, given")

    seen = reply_of(output, "the endpoint received")
    assert seen.startswith("[image: image/png, 4x3, ") and seen.endswith("(intact)")

    embedded = re.search(r"^  (\d+) vectors of (\d+) dimensions; nearest document \(\d\.\d+\): (.*)$", output,
                         re.MULTILINE)
    assert embedded and int(embedded.group(2)) == EMBED_DIMENSIONS and int(embedded.group(1)) > 1
    assert "authorises Snowflake once" in embedded.group(3)

    assert "set 'Input / Output credits per million tokens' as a user would" in output
    rows = {match.group(1).rstrip(): match.groups()[1:] for match in re.finditer(
        r"^((?:chat|embed|cortex): .+?) +(\d+) +(\d+)[ ~] +(\d+)[ ~] +(\d+) +(\d+\.\d{8})  (busy time|tokens)$",
        output, re.MULTILINE)}
    assert rows["chat: streamed"][-1] == "busy time" and float(rows["chat: streamed"][-2]) > 0
    dollars_per_credit = CortexCostConfig().dollars_per_credit
    calls = {f"streamed ({CHAT_MODEL})": CHAT_MODEL, f"tool call ({TOOL_MODEL})": TOOL_MODEL,
             f"tool result ({TOOL_MODEL})": TOOL_MODEL, f"image ({TOOL_MODEL})": TOOL_MODEL,
             f"embed ({EMBED_MODEL})": EMBED_MODEL}
    for call, model in calls.items():
        _rows, prompt, completion, _retries, cost, billed = rows[f"cortex: {call}"]
        rates = price_settings(model)
        expected = (int(prompt) * rates["input_credits_per_million"]
                    + int(completion) * rates.get("output_credits_per_million", 0.0)) / 1_000_000 * dollars_per_credit
        assert billed == "tokens" and int(prompt) > 0 and float(cost) == pytest.approx(expected, abs=1e-8)
