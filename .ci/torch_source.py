"""Which index ``make venv`` should install torch from, read from ``pip install --dry-run --report -`` on stdin.

Prints ``default`` when the resolved torch is a CPU build (this machine's wheel on disk, macOS, ...), or ``cpu-index``
when the default index would bring the CUDA build and its nvidia-* / cuda-* packages (several GB on an ordinary
Linux machine): then PyTorch's CPU wheel index is used instead.
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


if __name__ == "__main__":
    try:
        print(torch_source(json.load(sys.stdin)))
    except (ValueError, KeyError):  # no report (resolution failed): the CPU index is the place to look
        print("cpu-index")
