"""The training config's schema: every key of the original MASTER config and ours, typed and checked at once.

`validate_config(raw, source)` checks a parsed config before anything is built: a wrong type, a value out of
range, a missing argument of a dataset/scheduler type or an unknown key raises UserError with one line,
`FILE: dotted.path = VALUE: what is allowed` (the first error, "(and N more)"); an unknown key names the closest
known one. The original's extra keys (`n_gpu`, `local_rank`, `monitor_open`, ...) are known and accepted. Keys
starting with "_" (set by the loader) are skipped. The validated models are what the trainer reads: every
default of the training loop is declared here (train/config.py only assembles them into RunSettings).

The JSON Schema it implies is in docs/config.schema.json, for editors; regenerate it with
`python -m masterocr.train.schema > docs/config.schema.json` (tests/test_config_schema.py checks it is current).
"""

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from pydantic_core import PydanticCustomError

from masterocr.errors import UserError
from masterocr.limits import MAX_BATCH, MAX_SAMPLES, MAX_STEPS, MAX_WORKERS
from masterocr.train.schema_data import DatasetSection, Loader
from masterocr.train.schema_errors import one_line, summary
from masterocr.train.schema_fields import (
    Batch,
    Bool,
    Closed,
    Flag,
    Int,
    IntText,
    Name,
    NumText,
    Open,
    PathText,
    Size,
    Text,
    Workers,
    closest,
    default,
    ignored,
    no_default,
)
from masterocr.train.schema_model import CharsetField, ModelArch
from masterocr.train.schema_optim import OptimizerSection, SchedulerSection

log = logging.getLogger(__name__)

SCHEMA_PATH = Path("docs") / "config.schema.json"
METRICS = ("word_acc", "word_acc_ci", "word_acc_str", "edit_acc")  # the validation metrics a run can monitor


def _folder(value: str) -> str:
    """A path that is a folder or can become one: no part of it is an existing file."""
    path = Path(value)
    try:
        existing = next((part for part in (path, *path.parents) if part.exists()), None)
        is_file = existing is not None and not existing.is_dir()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise PydanticCustomError("bad_folder", "cannot be a folder ({why})", {"why": str(exc)}) from exc
    if is_file:
        raise PydanticCustomError("not_a_folder", "{part} is a file; give a folder", {"part": str(existing)})
    return value


def _monitor(value: str) -> str:
    mode, _, metric = value.partition(" ")
    if value != "off" and (mode not in ("min", "max") or metric not in METRICS):
        raise PydanticCustomError(
            "monitor", 'must be "off" or "max"/"min" and a metric: {metrics}', {"metrics": ", ".join(METRICS)}
        )
    return value


Folder = Annotated[PathText, AfterValidator(_folder)]


STEPS = {"ge": 1, "le": MAX_STEPS}
RUN_KEYS = ("name", "run_id", "seed", "deterministic", "distributed", "local_world_size")  # top level or trainer
LOADER_KEYS = ("batch_size", "num_workers")  # of train_loader/val_loader args, or trainer.<train|val>_<key>


class RunFields(Open):
    """Run identity and process settings (top level, or in `trainer`, which wins)."""

    name: Name = default("MASTER_Default", "run name: runs are saved to save_dir/name/run_id_<mmdd_HHMMSS>")
    run_id: Name = default("example", "run id (see name)")
    seed: IntText(ge=-(2**63), lt=2**64) = default(123, "seed of every random stream")
    deterministic: Flag = default(True, "deterministic cuDNN kernels")
    distributed: Flag = default(True, "use torch.distributed when launched by torchrun (false: one process)")
    local_world_size: IntText(ge=1, le=MAX_WORKERS) = default(1, "processes per node")


class DistillSection(Closed):
    """A CTC teacher whose frame posteriors are soft targets for the CTC branch (train/teacher.py), training only."""

    teacher: Text = default("ppocrv6", "a named teacher (ppocrv6: the rapidocr wheel's PP-OCRv6 small) or an ONNX "
                                       "file of a PaddleOCR-layout CTC recognizer")
    weight: NumText(ge=0, le=100) = default(1.0, "weight of the teacher's term beside the CTC loss")
    top_k: IntText(ge=1, le=64) = default(4, "teacher classes kept per frame")
    max_cer: NumText(ge=0, le=1) = default(0.05, "a line is taught only when the teacher reads it within this CER")
    threads: IntText(ge=1, le=MAX_WORKERS) = default(1, "the teacher's CPU threads")


class Trainer(RunFields):
    """The training loop (the original's `trainer` section and ours): what the trainer reads, every default here.

    `validate_config(...).trainer_settings()` fills the keys this section leaves out from the top level (run
    fields, optimizer, schedule) and the loaders (batch sizes, workers)."""

    epochs: IntText(**STEPS) = default(10, "passes over the training set")
    max_len_step: Int(ge=0, le=MAX_STEPS) | None = Field(None, description="cap on batches per epoch (0/null: none)")
    max_steps: Int(ge=0, le=MAX_STEPS) | None = Field(
        None, description="cap on optimizer steps of the run (0/null: none); a per-step schedule without its "
                          "own total_steps follows it")
    do_validation: Flag = default(True, "validate on val_dataset")
    validation_start_epoch: IntText(ge=0, le=MAX_STEPS) = default(1, "first epoch that validates")
    log_step_interval: IntText(**STEPS) = default(50, "optimizer steps between log lines")
    val_step_interval: IntText(**STEPS) = default(2000, "optimizer steps between validations")
    save_dir: Folder = default("saved", "folder of the runs (created if missing)")
    save_period: IntText(**STEPS) = default(1, "epochs between checkpoint-epoch<N>.pth")
    save_step_interval: IntText(**STEPS) = default(1000, "optimizer steps between checkpoint-latest.pth")
    monitor: Annotated[Text, AfterValidator(_monitor)] = default(
        "max word_acc", '"max word_acc", "min <metric>" or "off": the metric that picks model_best.pth'
    )
    early_stop: IntText(ge=-MAX_STEPS, le=MAX_STEPS) = default(
        -1, "validations without improvement before stopping (<= 0: never)")
    tensorboard: Flag = default(False, "write TensorBoard logs")
    sync_batch_norm: Flag = default(False, "SyncBatchNorm across GPUs in distributed runs")
    train_batch_size: Batch = default(64, "images per training batch (overrides train_loader.args)")
    val_batch_size: Batch = default(64, "images per validation batch (overrides val_loader.args)")
    train_num_workers: Workers = default(2, "training loader workers (overrides train_loader.args)")
    val_num_workers: Workers = default(2, "validation loader workers (overrides val_loader.args)")
    grad_clip: NumText(ge=0) | None = Field(5.0, description="gradient norm clip (0/null: none)")
    label_smoothing: NumText(ge=0, lt=1) = default(0.0, "label smoothing of the loss")
    amp: Literal["bf16", "fp16"] | None = Field(None, description="mixed precision (null: fp32)")
    grad_accum_steps: IntText(ge=1, le=MAX_BATCH) = default(1, "batches per optimizer step")
    bucket_pool: IntText(ge=0, le=64) = default(
        0, "width bucketing: load N batches at a time, sort their lines by width and batch neighbours (0: off)"
    )
    distill: DistillSection | None = Field(None, description="a CTC teacher for the CTC branch (null: none)")
    compile: Flag = default(False, "torch.compile the model")
    auto_resume: Flag = default(False, "fixed run folder save_dir/name/run_id; continue from its checkpoint-latest.pth")
    nan_patience: IntText(**STEPS) = default(20, "consecutive non-finite losses before the run stops")
    val_max_samples: Int(ge=0, le=MAX_SAMPLES) | None = Field(
        None, description="cap on validation samples (0/null: all)")
    progress: Flag = default(True, "show a progress bar")
    max_len: Size("max_len") | None = Field(None, description="longest text (overrides the model's max_len)")
    optimizer: OptimizerSection | None = Field(None, description="as the top level's (which wins when set)")
    lr_scheduler: SchedulerSection | None = Field(None, description="as the top level's (which wins when set)")
    log_verbosity: Any = ignored()
    monitor_open: Any = ignored()
    anomaly_detection: Any = ignored()


class ValidatedConfig(RunFields):
    """A masterocr training config: the original MASTER config.json format with optional additions."""

    finetune: Bool = default(False, "with -r: load the checkpoint's weights only (as --finetune)")
    n_gpu: Any = ignored()
    local_rank: Any = ignored("ignored: set by the launcher")
    global_rank: Any = ignored("ignored: set by the launcher")
    augment: Bool = default(True, "augment the training images")
    model_arch: ModelArch | None = Field(None, description="the network")
    charset: CharsetField | None = Field(None, description="the vocabulary (a keys file path, or an object)")
    train_dataset: DatasetSection | None = Field(None, description="the training set")
    val_dataset: DatasetSection | None = Field(None, description="the validation set")
    train_loader: Loader | None = Field(None, description="training loader options")
    val_loader: Loader | None = Field(None, description="validation loader options")
    optimizer: OptimizerSection | None = Field(None, description="optimizer (default Adam, lr 0.0004)")
    lr_scheduler: SchedulerSection | None = Field(None, description="learning-rate schedule (default none)")
    trainer: Trainer = Field(default_factory=Trainer, description="the training loop", json_schema_extra=no_default)

    def trainer_settings(self) -> Trainer:
        """The training loop's settings: `trainer`'s keys, else the top level's (run fields; the top level's
        optimizer and schedule win over trainer's, as in the original), else the loaders' batch sizes and
        workers, else the defaults."""
        given = self.trainer.model_fields_set
        update: dict[str, Any] = {k: getattr(self, k) for k in RUN_KEYS
                                  if k in self.model_fields_set and k not in given}
        for prefix, loader in (("train", self.train_loader), ("val", self.val_loader)):
            args = loader.args if loader is not None else None
            for key in LOADER_KEYS:
                if args is not None and key in args.model_fields_set and f"{prefix}_{key}" not in given:
                    update[f"{prefix}_{key}"] = getattr(args, key)
        for key in ("optimizer", "lr_scheduler"):
            if getattr(self, key) is not None:
                update[key] = getattr(self, key)
        return self.trainer.model_copy(update=update)


def _unknown_keys(model: BaseModel, path: str) -> list[tuple[str, str]]:
    """(dotted path, suggestion) of every key kept as extra in `model` and the sections inside it."""
    found = []
    known = list(type(model).model_fields)
    for key in model.model_extra or {}:
        found.append((f"{path}{key}", closest(str(key), known)))
    for name in known:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found += _unknown_keys(value, f"{path}{name}.")
    return found


def validate_config(raw: object, source: str | Path, *, training: bool = False) -> ValidatedConfig:
    """Check a parsed config (`json.load`'s result) against the schema; UserError (one line) if it is wrong.

    `source` names the config in messages (its path). An unknown key is an error naming the closest known key.
    `training`: also require what a training run needs (a train_dataset). The result is what the trainer reads
    (`trainer_settings()`, and the sections as typed models)."""
    source = str(source)
    if not isinstance(raw, dict):
        raise UserError(f"{one_line(source)}: the config must be a JSON object {{...}}, not {type(raw).__name__}")
    data = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("_"))}
    try:
        cfg = ValidatedConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(summary(source, exc.errors(include_url=False), data)) from None
    unknown = _unknown_keys(cfg, "")
    if unknown:
        key, hint = unknown[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise UserError(f"{one_line(source)}: unknown key {one_line(key)}{hint}: nothing reads it; fix its name or "
                        f"remove it (docs/training.md lists the keys){more}")
    if training and cfg.train_dataset is None:
        raise UserError(f"{one_line(source)}: train_dataset is missing: the training set, "
                        f'e.g. {{"type": "TextDataset", "args": {{"txt_file": ..., "img_root": ...}}}}')
    return cfg


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config, with descriptions for editors."""
    schema = ValidatedConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "masterocr training config",
            **{k: v for k, v in schema.items() if k != "title"}}


def schema_text() -> str:
    """json_schema() as the text of docs/config.schema.json."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_json_schema(path: str | Path = SCHEMA_PATH) -> None:
    """Write the JSON Schema to `path` (default docs/config.schema.json)."""
    Path(path).write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        write_json_schema(sys.argv[1])
    else:
        sys.stdout.write(schema_text())
