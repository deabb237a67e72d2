"""The fine-tuning job's entry script, run here on the tiny chat model, with local folders standing in for stages.

This is the code the Snowflake ML job runs on the GPU pool; only the submission (tests/unit/deploy) is Snowflake's.
"""

from __future__ import annotations

import json
import runpy
import shutil
import sys
import types
from pathlib import Path

import pytest

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.finetune.job_main import REPORT_FILE, run
from spcs_standin.tinychat import SYSTEM_PROMPT, chat_model_dir

ENTRY_SCRIPT = Path(__file__).resolve().parents[2] / "python-lib" / "spcs_llm" / "deploy" / "finetune" / "job_main.py"
PAIRS = [{"instruction": "Name a color.", "output": "Blue is a color of France."},
         {"instruction": "Translate to English", "input": "chat", "output": "cat"}]


def _arguments(base: str, data: str, output: str, *extra: str) -> list[str]:
    return ["--base-model", base, "--data-file", data, "--output", output, "--input-column=input",
            "--learning-rate", "0.01", "--max-steps", "60", f"--system-prompt={SYSTEM_PROMPT}", *extra]


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(pair) for pair in PAIRS))
    return path


def test_the_entry_point_trains_saves_the_adapter_and_reports_a_falling_loss(tmp_path, pairs_file, capsys):
    output = tmp_path / "adapter_stage"
    report = run(_arguments(str(chat_model_dir()), str(pairs_file), str(output)))

    assert report["examples"] == 2 and report["steps"] == 60 == len(report["losses"])
    # Not the last step's loss: full-batch Adam at lr 0.01 reaches a plateau near 1.0 (3.8 untrained; "cat" is made
    # of tokens the tiny model barely knows) and then jumps by up to 0.6 from one step to the next, differently on
    # each CPU's float path. The plateau, read over the last ten steps, is what any working run reaches.
    last = sorted(report["losses"][-10:])
    assert last[0] < report["losses"][0] / 3 and last[len(last) // 2] < report["losses"][0] / 2
    assert json.loads((output / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert json.loads((output / REPORT_FILE).read_text()) == report
    log = capsys.readouterr().out
    assert "Training a LoRA adapter on 2 pairs" in log and "step 10 loss" in log and "Adapter saved to" in log


class _StageFiles:
    """``session.file`` over a local folder standing in for the account's stages (``@STAGE/path`` → folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _local(self, location: str) -> Path:
        return self.root / location.lstrip("@").rstrip("/")

    def get(self, location: str, target: str, **_: object) -> None:
        source = self._local(location)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)

    def put(self, pattern: str, location: str, **_: object) -> None:
        self._local(location).mkdir(parents=True, exist_ok=True)
        for path in Path(pattern).parent.glob(Path(pattern).name):
            shutil.copy(path, self._local(location))


def test_run_as_the_job_launcher_runs_it_with_stage_paths_and_mini_batches(tmp_path, pairs_file, monkeypatch):
    """The launcher runs the file with runpy and saves ``__return__`` as the job's result (mljob_launcher.py)."""
    stages = tmp_path / "stages"
    shutil.copytree(chat_model_dir(), stages / "DB.S.MODELS" / "tiny")
    shutil.copy(pairs_file, (stages / "DB.S.DATA").mkdir(parents=True) or stages / "DB.S.DATA")
    session = types.SimpleNamespace(file=_StageFiles(stages))
    # The job's session comes from Snowpark's builder (the launcher's own, in Snowflake): the seam patched here.
    monkeypatch.setattr("snowflake.snowpark.Session.SessionBuilder.getOrCreate", lambda _builder: session)
    argv = _arguments("@DB.S.MODELS/tiny", "@DB.S.DATA/pairs.jsonl", "@DB.S.ADAPTERS/run1", "--batch-size", "1")
    monkeypatch.setattr(sys, "argv", [str(ENTRY_SCRIPT), *argv])

    report = runpy.run_path(str(ENTRY_SCRIPT), run_name="__main__")["__return__"]

    assert report["adapter_location"] == "@DB.S.ADAPTERS/run1" and report["steps"] == 60
    assert (stages / "DB.S.ADAPTERS" / "run1" / "adapter_config.json").is_file()
    # One pair per step: the steps alternate pairs, so the last four hold two steps of the first pair, whose
    # loss falls from about 2 to under 0.1 (the second pair's stays high: see the test above).
    assert min(report["losses"][-4:]) < report["losses"][0] / 3


def test_a_file_with_an_empty_output_fails_the_job_with_the_row_number(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": " "}\n')
    with pytest.raises(ConfigurationError, match=r"rows 2\)"):
        run(_arguments(str(chat_model_dir()), str(path), str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_a_hub_base_model_is_downloaded_without_duplicate_weights_and_with_the_secret_token(
        tmp_path, pairs_file, monkeypatch):
    import huggingface_hub

    calls = []

    def snapshot_download(**kwargs):
        calls.append(kwargs)
        return str(chat_model_dir())

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_secret")  # the job container gets it from the Snowflake SECRET
    report = run(_arguments("HuggingFaceH4/zephyr-7b-beta", str(pairs_file), str(tmp_path / "out"),
                            "--revision", "main", "--max-steps", "2"))

    (call,) = calls
    assert call["repo_id"] == "HuggingFaceH4/zephyr-7b-beta" and call["revision"] == "main"
    assert call["token"] == "hf_from_the_secret"
    assert "*.safetensors" in call["allow_patterns"] and "*.bin" not in call["allow_patterns"]
    assert report["base_model"] == "HuggingFaceH4/zephyr-7b-beta" and report["steps"] == 2
