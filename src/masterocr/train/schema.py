"""The training config's schema: every key of the original MASTER config and ours, typed and checked at once.

`validate_config(raw, source)` checks a parsed config before anything is built: a wrong type, a value out of
range, a missing argument of a dataset/scheduler type or an unknown optimizer/scheduler/dataset argument raises
UserError with one line, `FILE: dotted.path = VALUE: what is allowed` (the first error, "(and N more)").
Keys nothing reads are logged as warnings with the closest known name; the original's extra keys (`n_gpu`,
`local_rank`, `monitor_open`, ...) are known and accepted. Keys starting with "_" (set by the loader) are
skipped. The typed settings themselves are still built from the raw dict by the config module; the value
types (see schema_fields) accept exactly what those readers understand.

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
from masterocr.train.schema_data import DatasetSection, Loader
from masterocr.train.schema_errors import one_line, summary
from masterocr.train.schema_fields import (
    Bool,
    Flag,
    Int,
    IntText,
    Name,
    NumText,
    Open,
    PathText,
    Text,
    absent,
    closest,
    ignored,
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


class RunFields(Open):
    """Run identity and process settings (top level, or in `trainer`)."""

    name: Name = absent("run name: runs are saved to save_dir/name/run_id_<mmdd_HHMMSS>")
    run_id: Name = absent("run id (see name)")
    seed: IntText(ge=-(2**63), lt=2**64) = absent("seed of every random stream (default 123)")
    deterministic: Flag = absent("deterministic cuDNN kernels")
    distributed: Flag = absent("use torch.distributed when launched by torchrun (false: one process)")
    local_world_size: IntText(ge=1) = absent("processes per node")


class Trainer(RunFields):
    """The training loop (the original's `trainer` section and ours)."""

    epochs: IntText(ge=1) = absent("passes over the training set (default 10)")
    max_len_step: Int(ge=0) | None = Field(None, description="cap on batches per epoch (0/null: none)")
    max_steps: Int(ge=0) | None = Field(None, description="cap on optimizer steps of the run (0/null: none)")
    do_validation: Flag = absent("validate on val_dataset")
    validation_start_epoch: IntText(ge=0) = absent("first epoch that validates")
    log_step_interval: IntText(ge=1) = absent("optimizer steps between log lines")
    val_step_interval: IntText(ge=1) = absent("optimizer steps between validations")
    save_dir: Folder = absent("folder of the runs (created if missing)")
    save_period: IntText(ge=1) = absent("epochs between checkpoint-epoch<N>.pth")
    save_step_interval: IntText(ge=1) = absent("optimizer steps between checkpoint-latest.pth")
    monitor: Annotated[Text, AfterValidator(_monitor)] = absent(
        '"max word_acc", "min <metric>" or "off": the metric that picks model_best.pth'
    )
    early_stop: IntText() = absent("validations without improvement before stopping (<= 0: never)")
    tensorboard: Flag = absent("write TensorBoard logs")
    sync_batch_norm: Flag = absent("SyncBatchNorm across GPUs in distributed runs")
    train_batch_size: IntText(ge=1) = absent("images per training batch (overrides train_loader.args)")
    val_batch_size: IntText(ge=1) = absent("images per validation batch (overrides val_loader.args)")
    train_num_workers: IntText(ge=0) = absent("training loader workers (overrides train_loader.args)")
    val_num_workers: IntText(ge=0) = absent("validation loader workers (overrides val_loader.args)")
    grad_clip: NumText(ge=0) | None = Field(None, description="gradient norm clip (0/null: none; default 5)")
    label_smoothing: NumText(ge=0, lt=1) = absent("label smoothing of the loss")
    amp: Literal["bf16", "fp16"] | None = Field(None, description="mixed precision (null: fp32)")
    grad_accum_steps: IntText(ge=1) = absent("batches per optimizer step")
    bucket_pool: IntText(ge=0, le=64) = absent(
        "width bucketing: load N batches at a time, sort their lines by width and batch neighbours (0: off)"
    )
    compile: Flag = absent("torch.compile the model")
    auto_resume: Flag = absent("fixed run folder save_dir/name/run_id; continue from its checkpoint-latest.pth")
    nan_patience: IntText(ge=1) = absent("consecutive non-finite losses before the run stops")
    val_max_samples: Int(ge=0) | None = Field(None, description="cap on validation samples (0/null: all)")
    progress: Flag = absent("show a progress bar")
    max_len: IntText(ge=1) = absent("longest text (overrides the model's max_len)")
    optimizer: OptimizerSection | None = Field(None, description="as the top level's (which wins when set)")
    lr_scheduler: SchedulerSection | None = Field(None, description="as the top level's (which wins when set)")
    log_verbosity: Any = ignored()
    monitor_open: Any = ignored()
    anomaly_detection: Any = ignored()


class ValidatedConfig(RunFields):
    """A masterocr training config: the original MASTER config.json format with optional additions."""

    finetune: Bool = absent("with -r: load the checkpoint's weights only (as --finetune)")
    n_gpu: Any = ignored()
    local_rank: Any = ignored("ignored: set by the launcher")
    global_rank: Any = ignored("ignored: set by the launcher")
    augment: Bool = absent("augment the training images (default true)")
    model_arch: ModelArch | None = Field(None, description="the network")
    charset: CharsetField | None = Field(None, description="the vocabulary (a keys file path, or an object)")
    train_dataset: DatasetSection | None = Field(None, description="the training set")
    val_dataset: DatasetSection | None = Field(None, description="the validation set")
    train_loader: Loader | None = Field(None, description="training loader options")
    val_loader: Loader | None = Field(None, description="validation loader options")
    optimizer: OptimizerSection | None = Field(None, description="optimizer (default Adam, lr 0.0004)")
    lr_scheduler: SchedulerSection | None = Field(None, description="learning-rate schedule (default none)")
    trainer: Trainer = absent("the training loop")


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


def validate_config(
    raw: object, source: str | Path, *, training: bool = False, warn: bool = True
) -> ValidatedConfig:
    """Check a parsed config (`json.load`'s result) against the schema; UserError (one line) if it is wrong.

    `source` names the config in messages (its path). `training`: also require what a training run needs (a
    train_dataset). `warn`: log a warning for each unknown key (off for a second check of the same file).
    """
    source = str(source)
    if not isinstance(raw, dict):
        raise UserError(f"{one_line(source)}: the config must be a JSON object {{...}}, not {type(raw).__name__}")
    data = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("_"))}
    try:
        cfg = ValidatedConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(summary(source, exc.errors(include_url=False), data)) from None
    for key, hint in _unknown_keys(cfg, "") if warn else ():
        log.warning("%s: unknown key %s is ignored%s", one_line(source), one_line(key), hint)
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
