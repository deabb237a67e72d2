"""Which index ``make venv`` should install torch from, read from ``pip install --dry-run --report -`` on stdin.

Prints ``default`` when the resolved torch is a CPU build (this machine's wheel on disk, macOS, ...), or ``cpu-index``
when the default index would bring the CUDA build and its nvidia-* / cuda-* packages (several GB on an ordinary
Linux machine): then PyTorch's CPU wheel index is used instead. With ``--url``: the URL of the torch wheel pip chose,
which ``make venv`` hands to uv.
"""

from __future__ import annotations

import json
import sys

GPU_PACKAGE_PREFIXES = ("nvidia-", "cuda-", "triton")


def torch_source(report: dict) -> str:
    installs = report.get("install", [])
    names = [str(item["metadata"]["name"]).lower() for item in installs]
    cuda_build = any(str(item["metadata"]["version"]).split("+")[-1].startswith("cu")
                     for item in installs if str(item["metadata"]["name"]).lower() == "torch")
    return "cpu-index" if cuda_build or any(name.startswith(GPU_PACKAGE_PREFIXES) for name in names) else "default"


def torch_url(report: dict) -> str:
    """Where pip would take torch from (its wheel's URL: a file on disk, PyPI, ...), so that uv installs that same
    wheel; empty when the report has none."""
    for item in report.get("install", []):
        if str(item["metadata"]["name"]).lower() == "torch":
            return str(item.get("download_info", {}).get("url", ""))
    return ""


if __name__ == "__main__":
    try:
        report = json.load(sys.stdin)
        print(torch_url(report) if sys.argv[1:] == ["--url"] else torch_source(report))
    except (ValueError, KeyError):  # no report (resolution failed): the CPU index is the place to look
        print("" if sys.argv[1:] == ["--url"] else "cpu-index")
