"""Set-up and packaging checks of the Makefile: the CPU build of torch on any machine, the dev env installed from
tests/requirements.lock (uv or pip) and the lock within tests/requirements.txt's ranges, and ``make plugin``
refusing to zip HEAD while shipped files have uncommitted changes; the LICENSE that plugin.json names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
TORCH_SOURCE = ROOT / ".ci" / "torch_source.py"
LOCK = ROOT / "tests" / "requirements.lock"


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
    result = subprocess.run([sys.executable, str(TORCH_SOURCE)], input=report, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == source


def test_the_torch_wheel_pip_chose_is_handed_to_uv():
    wheel = "file:///wheels/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    report = json.dumps({"install": [
        {"metadata": {"name": "filelock", "version": "3.20.0"}, "download_info": {"url": "https://x/filelock.whl"}},
        {"metadata": {"name": "torch", "version": "2.13.0+cpu"}, "download_info": {"url": wheel}}]})
    for given, url in ((report, wheel), ("", ""), (_report(("sympy", "1.14")), "")):
        result = subprocess.run([sys.executable, str(TORCH_SOURCE), "--url"], input=given, capture_output=True,
                                text=True, check=True)
        assert result.stdout.strip() == url


def test_the_venv_recipe_asks_pip_before_installing_torch_and_uses_the_cpu_index_when_needed():
    makefile = (ROOT / "Makefile").read_text()
    assert "--dry-run" in makefile and "--report -" in makefile and ".ci/torch_source.py" in makefile
    assert "--index-url $(TORCH_CPU_INDEX)" in makefile and "download.pytorch.org/whl/cpu" in makefile


def _lock_pins() -> dict[str, str]:
    lines = (line.split("#", 1)[0].strip() for line in LOCK.read_text().splitlines())
    return dict(line.split("==", 1) for line in lines if line)


def _ranges(path: Path) -> list[Requirement]:
    """The requirements of a requirements file and of the files it includes (-r)."""
    found = []
    for line in (line.split("#", 1)[0].strip() for line in path.read_text().splitlines()):
        if line.startswith("-r"):
            found += _ranges((path.parent / line[2:].strip()).resolve())
        elif line:
            found.append(Requirement(line))
    return found


def test_the_lock_pins_every_dev_requirement_within_its_range_and_no_cuda_package():
    pins = _lock_pins()
    assert len(pins) > 100 and all(version and "+" not in version for version in pins.values())
    assert not [name for name in pins if name.startswith(("nvidia-", "cuda-", "triton"))]
    assert pins["torch"] == "2.13.0"  # matches the CPU build (2.13.0+cpu) that make venv installs first
    for requirement in _ranges(ROOT / "tests" / "requirements.txt"):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {LOCK.name}: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"{LOCK.name} pins {name}=={pins[name]} outside {requirement.specifier}: run make lock"


FAKE_PY = """#!/bin/sh
# python3 -m venv DIR: a venv whose pip, uv and python only log what they are asked (to $FAKE_LOG).
if [ "$1" = -m ] && [ "$2" = venv ]; then
    mkdir -p "$3/bin" "$3/site"
    for tool in pip python; do cp "$FAKE_TOOLS/$tool" "$3/bin/$tool"; done
    exit 0
fi
exec "$REAL_PYTHON" "$@"
"""
FAKE_PIP = """#!/bin/sh
case "$*" in
    *--dry-run*) printf '%s' "$FAKE_REPORT"; exit 0 ;;
    *uv==*) [ -n "$FAKE_NO_UV" ] && exit 1; cp "$FAKE_TOOLS/uv" "$(dirname "$0")/uv" ;;
esac
echo "pip $*" >> "$FAKE_LOG"
"""
FAKE_UV = """#!/bin/sh
echo "uv $*" >> "$FAKE_LOG"
exit ${FAKE_UV_RC:-0}
"""
FAKE_PYTHON = """#!/bin/sh
[ "$1" = -c ] && { echo "$(dirname "$0")/../site"; exit 0; }
exec "$REAL_PYTHON" "$@"
"""
WHEEL = "file:///wheels/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def _make_venv(tmp_path: Path, report: str, *make_args: str, **env: str) -> list[str]:
    """``make venv`` with fake python/pip/uv: the install commands it runs, in order (uv or pip first word)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, text in (("py", FAKE_PY), ("pip", FAKE_PIP), ("uv", FAKE_UV), ("python", FAKE_PYTHON)):
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    log = tmp_path / "log"
    environment = {**os.environ, "FAKE_TOOLS": str(tools), "FAKE_LOG": str(log), "REAL_PYTHON": sys.executable,
                   "FAKE_REPORT": report, **env}
    venv = tmp_path / "venv"
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "venv", f"PY={tools / 'py'}", f"VENV={venv}",
                             *make_args], capture_output=True, text=True, env=environment, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (venv / ".installed-stamp").exists() and (venv / "site" / "spcs_llm_dev.pth").exists()
    return log.read_text().splitlines()


CPU_REPORT = json.dumps({"install": [{"metadata": {"name": "torch", "version": "2.13.0+cpu"},
                                      "download_info": {"url": WHEEL}}]})
CUDA_REPORT = _report(("torch", "2.13.0"), ("nvidia-cublas-cu12", "12.8"))


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_venv_installs_torch_then_the_lock_with_uv(tmp_path):
    uv, torch, lock = _make_venv(tmp_path, CPU_REPORT)
    assert uv.startswith("pip install") and "uv==" in uv
    assert torch.startswith("uv pip install") and f"--no-deps torch @ {WHEEL}" in torch
    assert lock.startswith("uv pip install") and lock.endswith("-r tests/requirements.lock")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_venv_falls_back_to_pip_with_the_same_lock(tmp_path):
    (tmp_path / "no-uv").mkdir()
    (tmp_path / "uv-fails").mkdir()
    (tmp_path / "pip-asked").mkdir()
    for log in (_make_venv(tmp_path / "no-uv", CPU_REPORT, FAKE_NO_UV="1"),
                _make_venv(tmp_path / "pip-asked", CPU_REPORT, "USE_UV=0")):
        assert [line.split(" -")[0] for line in log] == ["pip install", "pip install"]
        assert f"--no-deps torch @ {WHEEL}" in log[0] and log[1].endswith("-r tests/requirements.lock")
    failed = _make_venv(tmp_path / "uv-fails", CPU_REPORT, FAKE_UV_RC="1")
    assert [line.split(" -")[0] for line in failed] == ["pip install", "uv pip install", "pip install", "pip install"]
    assert failed[-1].endswith("-r tests/requirements.lock")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_venv_takes_torch_from_the_cpu_index_where_pip_would_bring_cuda(tmp_path):
    log = _make_venv(tmp_path, CUDA_REPORT)
    assert "--no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in log[1]
    assert not [line for line in log if "nvidia" in line]


def test_make_lock_regenerates_the_lock_with_uv_without_cuda_packages():
    makefile = (ROOT / "Makefile").read_text()
    assert "$(LOCK)" in makefile[makefile.index("$(STAMP):"):].split("\n")[0]  # the venv follows the lock
    lock = makefile[makefile.index("\nlock:"):]
    assert "uv pip compile" in lock and "--python-version 3.11" in lock and "nvidia-" in lock
    assert "lock" in makefile.split(".PHONY:", 1)[1].splitlines()[0]


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
