"""The SPCS instance families (resource/instance_families.json): hardware, clouds and credits per hour.

Used to check a requested family before any connection (a typo like ``GPU_FOO`` fails at once), to tell GPU
families from CPU ones, and to check that a model's weights fit the family's GPU memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.resources import resource_path

# Serving needs room beyond the bf16 weights (activations, KV cache, CUDA context); 20 % is a rule of thumb.
# inferred: not a Snowflake figure; a model close to the limit should be tried on the larger family.
SERVING_OVERHEAD = 1.2


@dataclass(frozen=True)
class InstanceFamily:
    name: str
    clouds: tuple[str, ...]
    vcpu: int
    memory_gib: float
    gpu: str | None
    gpu_count: int
    gpu_memory_gib: float  # per GPU
    credits_per_hour: float

    @property
    def has_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpu_count * self.gpu_memory_gib

    @property
    def label(self) -> str:
        """``GPU_NV_XS (Azure, 1x T4 16 GB, 0.25 credits/h)`` — what a person needs to pick one."""
        clouds = ", ".join("GCP" if c == "gcp" else c.capitalize() if c == "azure" else c.upper() for c in self.clouds)
        hardware = f"{self.gpu_count}x {self.gpu} {self.gpu_memory_gib:g} GB" if self.has_gpu else \
            f"{self.vcpu} vCPU, {self.memory_gib:g} GiB"
        return f"{self.name} ({clouds}, {hardware}, {self.credits_per_hour:g} credits/h)"


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, InstanceFamily], ...]:
    with open(resource_path("instance_families.json"), encoding="utf-8") as handle:
        families = json.load(handle)["families"]
    return tuple(
        (name, InstanceFamily(name=name, clouds=tuple(spec["cloud"]), vcpu=int(spec["vcpu"]),
                              memory_gib=float(spec["memory_gib"]), gpu=spec["gpu"], gpu_count=int(spec["gpu_count"]),
                              gpu_memory_gib=float(spec["gpu_memory_gib"]),
                              credits_per_hour=float(spec["credits_per_hour"])))
        for name, spec in families.items()
    )


def instance_families() -> dict[str, InstanceFamily]:
    return dict(_table())


def table_date() -> str:
    with open(resource_path("instance_families.json"), encoding="utf-8") as handle:
        return str(json.load(handle).get("as_of", "unknown date"))


def check_instance_family(name: str, *, gpu: bool, credits_per_hour: float | None = None,
                          option: str = "--instance-family") -> InstanceFamily | None:
    """The family's table entry, or None for an unlisted family accepted because ``credits_per_hour`` is given.

    A family that is neither listed nor priced, or a CPU family where a GPU is needed (and the reverse), is a
    ConfigurationError raised before anything connects to Snowflake.
    """
    known = instance_families()
    family = known.get(name.strip().upper())
    kind = "GPU" if gpu else "CPU"
    if family is None:
        if credits_per_hour is not None:
            return None
        choices = ", ".join(f for f, spec in known.items() if spec.has_gpu == gpu)
        raise ConfigurationError(
            f"{option} {name!r} is not a known SPCS instance family.",
            fix=f"Use a {kind} family ({choices}), or add --credits-per-hour for a family newer than the table.",
        )
    if family.has_gpu != gpu:
        choices = ", ".join(f for f, spec in known.items() if spec.has_gpu == gpu)
        raise ConfigurationError(
            f"{option} {family.name} is a {'GPU' if family.has_gpu else 'CPU'} family, but a {kind} family is "
            "needed here.",
            fix=f"Use one of {choices}.",
        )
    return family


def smallest_fitting_gpu_family(weights_gib: float, clouds: tuple[str, ...] = ("aws",)) -> InstanceFamily | None:
    """The cheapest single-GPU family (on these clouds) whose GPU memory holds the weights plus serving room."""
    fitting = [f for f in instance_families().values()
               if f.gpu_count == 1 and set(f.clouds) & set(clouds) and fits(weights_gib, f)]
    return min(fitting, key=lambda f: f.credits_per_hour, default=None)


def fits(weights_gib: float, family: InstanceFamily) -> bool:
    """Whether one service instance's weights fit the family's GPU memory (one GPU unless sharded)."""
    return weights_gib * SERVING_OVERHEAD <= family.total_gpu_memory_gib
