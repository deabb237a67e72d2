"""Set-up and packaging checks of the Makefile: the CPU build of torch on any machine, and ``make plugin``
refusing to zip HEAD while shipped files have uncommitted changes; the LICENSE that plugin.json names."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TORCH_SOURCE = ROOT / ".ci" / "torch_source.py"


def _report(*packages: tuple[str, str]) -> str:
    return json.dumps({"install": [{"metadata": {"name": name, "version": version}} for name, version in packages]})


@pytest.mark.parametrize(("report", "source"), [
    (_report(("torch", "2.13.0+cpu"), ("filelock", "3.20.0")), "default"),  # this machine's wheel on disk
    (_report(("torch", "2.13.0"), ("sympy", "1.14")), "default"),  # macOS: PyPI's build is the CPU one
    (_report(("torch", "2.13.0"), ("nvidia-cublas-cu12", "12.8"), ("triton", "3.5")), "cpu-index"),  # ordinary Linux
    (_report(("torch", "2.13.0+cu128"),), "cpu-index"),
    ("", "cpu-index"),  # resolution failed: look on the CPU index
])
def test_the_torch_index_is_chosen_from_pips_dry_run_report(report, source):
    result = subprocess.run([sys.executable, str(TORCH_SOURCE)], input=report, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == source


def test_the_venv_recipe_asks_pip_before_installing_torch_and_uses_the_cpu_index_when_needed():
    makefile = (ROOT / "Makefile").read_text()
    assert "--dry-run" in makefile and "--report -" in makefile and ".ci/torch_source.py" in makefile
    assert "--index-url $(TORCH_CPU_INDEX)" in makefile and "download.pytorch.org/whl/cpu" in makefile


def test_the_licence_is_the_apache_licence_plugin_json_names():
    assert '"licenseInfo": "Apache' in (ROOT / "plugin.json").read_text()
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="needs make and git")
def test_make_plugin_refuses_uncommitted_changes_and_zips_a_clean_tree(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", str(clone)], check=True)
    for name in ("Makefile", "LICENSE"):  # this checkout's versions, committed in the clone
        shutil.copy(ROOT / name, clone / name)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "add", "Makefile", "LICENSE"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "this checkout's Makefile"], check=True)
    make = ["make", "-s", "-C", str(clone), "plugin", f"PY={sys.executable}"]

    (clone / "python-lib" / "spcs_llm" / "new_module.py").write_text("VALUE = 1\n")
    refused = subprocess.run(make, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "uncommitted changes" in refused.stderr and "new_module.py" in refused.stderr and "Fix:" in refused.stderr
    assert not (clone / "dist").exists()

    (clone / "python-lib" / "spcs_llm" / "new_module.py").unlink()
    built = subprocess.run(make, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert list((clone / "dist").glob("dss-plugin-*.zip"))
