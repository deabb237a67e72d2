"""The fine-tuning job's entry script: base model + training pairs in, LoRA adapter and training report out.

Snowflake runs this file on the GPU pool (``finetune_job.submit_finetune`` ships it with ``snowflake.ml.jobs``
``submit_file`` and the ``spcs_llm`` package as an import); tests run ``run`` locally on the tiny chat model, with
local folders standing in for the stages. The training itself is ``finetune.finetune_lora`` in both places.

Each location may be a stage path (``@DB.SCHEMA.STAGE/path``, read and written with the job's Snowpark session)
or a local path. The base model may also be a Hugging Face id, downloaded in the job (a gated one reads the token
from ``HF_TOKEN``, which the job gets from a Snowflake SECRET, never from its arguments).

Imports are absolute (``spcs_llm...``): the ML job launcher runs this file as a script (``runpy.run_path``), with
the uploaded package zip on ``sys.path`` (snowflake-ml ``jobs/_utils/scripts/mljob_launcher.py``). The report
dict is left in ``__return__``, which the launcher saves as the job's result (``MLJob.result()``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcs_llm.deploy.finetune.training import LoraSettings, TrainingExample, finetune_lora
from spcs_llm.deploy.finetune.training_data import (
    TrainingColumns,
    examples_from_file,
    examples_from_records,
    require_columns,
)

REPORT_FILE = "training_report.json"
PROGRESS_EVERY = 10  # steps between loss lines in the job's log


@dataclass(frozen=True)
class JobArguments:
    base_model: str
    output: str
    table: str | None
    data_file: str | None
    columns: TrainingColumns
    settings: LoraSettings
    revision: str | None = None


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a LoRA adapter on prompt/response pairs.")
    parser.add_argument("--base-model", required=True, help="Hugging Face id, stage folder or local folder")
    parser.add_argument("--revision")
    parser.add_argument("--output", required=True, help="stage folder or local folder for the adapter")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--table")
    source.add_argument("--data-file")
    parser.add_argument("--instruction-column", default="instruction")
    parser.add_argument("--input-column", default="", help="empty: the pairs have no input column")
    parser.add_argument("--output-column", default="output")
    parser.add_argument("--rank", type=int, default=LoraSettings.rank)
    parser.add_argument("--alpha", type=int, default=LoraSettings.alpha)
    parser.add_argument("--learning-rate", type=float, default=LoraSettings.learning_rate)
    parser.add_argument("--max-steps", type=int, default=LoraSettings.max_steps)
    parser.add_argument("--batch-size", type=int, default=0, help="0: every pair in each step")
    parser.add_argument("--seed", type=int, default=LoraSettings.seed)
    parser.add_argument("--system-prompt", default="")
    return parser


def parse_arguments(argv: list[str]) -> JobArguments:
    args = argument_parser().parse_args(argv)
    settings = LoraSettings(rank=args.rank, alpha=args.alpha, learning_rate=args.learning_rate,
                            max_steps=args.max_steps, seed=args.seed, batch_size=args.batch_size or None,
                            system_prompt=args.system_prompt or None)
    columns = TrainingColumns(instruction=args.instruction_column, output=args.output_column,
                              input=args.input_column or None)
    return JobArguments(base_model=args.base_model, output=args.output, table=args.table, data_file=args.data_file,
                        columns=columns, settings=settings, revision=args.revision)


def job_session() -> Any:
    """The job's own Snowpark session. inferred: inside an ML job, ``Session.builder.getOrCreate()`` returns the
    session the launcher opened with the service's credentials (snowflake-ml mljob_launcher.py opens one)."""
    from snowflake.snowpark import Session

    return Session.builder.getOrCreate()


class Locations:
    """Reads and writes stage paths through one lazily opened session, local paths directly."""

    def __init__(self, workdir: Path, session: Any = None) -> None:
        self.workdir = workdir
        self._session = session

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = job_session()
        return self._session

    def local_file(self, location: str) -> Path:
        if not location.startswith("@"):
            return Path(location)
        target = self.workdir / "data"
        self.session.file.get(location, str(target))
        return target / location.rsplit("/", 1)[-1]

    def local_model(self, location: str, revision: str | None) -> Path:
        if location.startswith("@"):
            # inferred: GET of a stage folder downloads every file under it; a saved model folder is flat.
            target = self.workdir / "base_model"
            self.session.file.get(location.rstrip("/") + "/", str(target))
            return target
        if Path(location).is_dir():
            return Path(location)
        from huggingface_hub import snapshot_download

        from spcs_llm.deploy.services.registry_ops import (
            SNAPSHOT_PATTERNS,  # the deployer's download: no duplicate *.bin
        )

        return Path(snapshot_download(repo_id=location, revision=revision, allow_patterns=list(SNAPSHOT_PATTERNS),
                                      token=os.environ.get("HF_TOKEN") or None))

    def publish(self, folder: Path, location: str) -> None:
        if location.startswith("@"):
            self.session.file.put(str(folder / "*"), location.rstrip("/"), auto_compress=False, overwrite=True)
        else:
            shutil.copytree(folder, location, dirs_exist_ok=True)


def table_examples(session: Any, table: str, columns: TrainingColumns) -> list[TrainingExample]:
    """Every row of ``table`` as a pair (the table name was checked as an identifier before submission)."""
    available = [field.name for field in session.table(table).schema.fields]
    require_columns(available, columns, f"Table {table}")
    present = {name.upper() for name in available}
    wanted = [name for name in columns.wanted if name.upper() in present]  # the input column is optional
    rows = session.sql(f"SELECT {', '.join(wanted)} FROM {table}").collect()
    return examples_from_records((row.as_dict() for row in rows), columns, f"Table {table}")


def run(argv: list[str], session: Any = None) -> dict[str, Any]:
    """Train as the arguments say and return the report (also written beside the adapter)."""
    job = parse_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="spcs-llm-finetune-") as scratch:
        places = Locations(Path(scratch), session)
        if job.table:
            examples = table_examples(places.session, job.table, job.columns)
        else:
            examples = examples_from_file(places.local_file(str(job.data_file)), job.columns)
        base_dir = places.local_model(job.base_model, job.revision)
        print(f"Training a LoRA adapter on {len(examples)} pairs over {job.base_model}", flush=True)
        adapter_dir = Path(scratch) / "adapter"
        result = finetune_lora(base_dir, examples, adapter_dir, job.settings, on_step=_print_progress)
        report = {"adapter_location": job.output, "base_model": job.base_model, "examples": len(examples),
                  "steps": len(result.losses), "losses": list(result.losses), "seconds": round(result.seconds, 3)}
        (adapter_dir / REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf-8")
        places.publish(adapter_dir, job.output)
    print(f"Adapter saved to {job.output}: loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}", flush=True)
    return report


def _print_progress(step: int, loss: float) -> None:
    if step == 1 or step % PROGRESS_EVERY == 0:
        print(f"step {step} loss {loss:.4f}", flush=True)


if __name__ == "__main__":
    __return__ = run(sys.argv[1:])
