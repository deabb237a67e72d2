"""``spcs-llm local --adapter ALIAS=FOLDER``: extra LoRA adapters for chat_lora, checked before anything loads."""

from __future__ import annotations

import argparse

import pytest

from spcs_llm.core.errors import ConfigurationError
from spcs_standin.settings import BUILT_IN_ADAPTER, add_arguments, parse_adapters, settings_from_args


def _adapter_folder(tmp_path, name: str):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_adapters_given_on_the_command_line_reach_the_settings(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    colors, sums = _adapter_folder(tmp_path, "colors"), _adapter_folder(tmp_path, "sums")
    args = parser.parse_args(["--adapter", f"colors={colors}", "--adapter", f"sums={sums}"])
    assert settings_from_args(args).adapters == (("colors", str(colors)), ("sums", str(sums)))


@pytest.mark.parametrize(("items", "message"), [
    (["colors"], "Bad --adapter"),
    (["colors=FOLDER", "colors=FOLDER"], "is taken"),
    ([f"{BUILT_IN_ADAPTER}=FOLDER"], "is taken"),
    (["colors=/no/such/folder"], "no adapter_config.json"),
])
def test_bad_adapter_flags_are_refused_with_a_fix(tmp_path, items, message):
    folder = _adapter_folder(tmp_path, "adapter")
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse_adapters([item.replace("FOLDER", str(folder)) for item in items])
    assert caught.value.fix
