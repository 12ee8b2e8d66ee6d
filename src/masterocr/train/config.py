"""The one place that reads the original MASTER config JSON and turns it into typed settings.

Configs are data: parsed with `json`, never evaluated. An original `config.json` with only its paths changed
runs as it is; our additions are optional keys (`preset`, `charset`, `amp`, ...) described in docs/config.md.
Names: `config` is the JSON as a dict, `settings` the typed `RunSettings` built from it, `cfg` a `MasterConfig`.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from masterocr.charset import Charset
from masterocr.errors import UserError
from masterocr.model import MasterConfig, get_preset
from masterocr.train.schema import validate_config
from masterocr.train.schema_errors import show

log = logging.getLogger(__name__)


def load_config(path: str | Path) -> dict:
    """Read a JSON config file (a plain dict; nothing in it is executed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror}; pass an existing JSON file with -c") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"config {path} is not UTF-8 text; re-save it as UTF-8 JSON") from exc
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"config {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    if not isinstance(config, dict):
        raise UserError(f"config {path} must hold a JSON object at the top level")
    validate_config(config, path)  # types, ranges and required arguments, before anything is built
    config.setdefault("_path", str(path))
    return config


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """Apply `key.sub=value` overrides; values are parsed as JSON when they parse, else kept as strings."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: write key=value, e.g. --set trainer.epochs=3")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = config
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {key}: {p} is not a section of the config")
        node[parts[-1]] = value
    return config


TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off", "")


def parse_bool(value: Any) -> bool:
    """The one reader of booleans written as text, in configs and on the command line.

    The original wrote booleans as strings too ('false' is truthy in Python: a bug we do not repeat); an empty
    string is false, as the original's missing keys became empty strings in places.
    """
    if isinstance(value, str):
        word = value.strip().lower()
        if word in FALSE_WORDS:
            return False
        if word in TRUE_WORDS:
            return True
        raise UserError(f"expected true or false, got {value!r}")
    return bool(value)


def dataset_args(config: dict, which: str = "train_dataset") -> dict:
    """The `args` of a dataset section (`train_dataset` by default), as a fresh dict."""
    return dict((config.get(which) or {}).get("args") or {})


def model_config(config: dict) -> MasterConfig:
    """MasterConfig from the config's `model_arch` (+ image size from the training dataset args)."""
    args = dict((config.get("model_arch") or {}).get("args") or {})
    overrides: dict[str, Any] = {}
    common = args.get("common_kwargs") or {}
    backbone = args.get("backbone_kwargs") or {}
    gcb = backbone.get("gcb_kwargs") or {}
    enc = args.get("encoder_kwargs") or {}
    dec = args.get("decoder_kwargs") or {}
    pairs = [
        (common, "with_encoder", "with_encoder", parse_bool),
        (common, "model_size", "d_model", int),
        (common, "multiheads", "nhead", int),
        (common, "max_len", "max_len", int),
        (backbone, "in_channels", "in_channels", int),
        (gcb, "ratio", "gca_ratio", float),
        (gcb, "headers", "gca_headers", int),
        (gcb, "att_scale", "gca_att_scale", parse_bool),
        (gcb, "fusion_type", "gca_fusion", str),
        (gcb, "layers", "gca_layers", lambda v: tuple(parse_bool(x) for x in v)),
        (gcb, "all_blocks", "gca_all_blocks", parse_bool),
        (enc, "stacks", "num_encoder_layers", int),
        (dec, "stacks", "num_decoder_layers", int),
        (dec, "dropout", "dropout", float),
        (dec, "feed_forward_size", "d_ff", int),
        # a missing share_parameter means false (the original defaulted to the truthy string 'false')
        (dec, "share_parameter", "share_parameter", parse_bool),
    ]
    for section, key, name, conv in pairs:
        if key in section and section[key] is not None:
            overrides[name] = conv(section[key])
    for key in ("widths", "blocks", "img_h", "img_w", "keep_ratio", "variable_width", "max_len", "d_ff",
                "ctc_weight", "decode"):
        if key in args:
            overrides[key] = args[key]
    data = dataset_args(config)
    for key in ("img_h", "img_w", "keep_ratio"):
        if key in data and key not in args:
            overrides[key] = data[key]
    if "max_len" in config.get("trainer", {}):
        overrides["max_len"] = int(config["trainer"]["max_len"])
    preset = args.get("preset")
    try:
        if preset:
            return get_preset(preset, **overrides)
        return MasterConfig(**overrides)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{config.get('_path', 'the config')}: model_arch: {exc}") from exc


def charset_from_config(config: dict, base_dir: Path | None = None) -> Charset:
    """Charset from `charset: {keys_file, keys, case_sensitive}`; the original's 95 ASCII keys by default."""
    spec = config.get("charset") or {}
    if isinstance(spec, str):
        spec = {"keys_file": spec}
    case = dataset_args(config).get("case_sensitive", spec.get("case_sensitive", True))
    kwargs = {"case_sensitive": parse_bool(case), "normalize": parse_bool(spec.get("normalize", True))}
    if spec.get("keys"):
        return Charset(spec["keys"], **kwargs)
    if spec.get("keys_file"):
        path = Path(spec["keys_file"])
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        try:
            return Charset.from_file(path, **kwargs)
        except UserError as exc:  # the keys file's own message, with the config and the field that named it
            where = f"{config.get('_path', 'the config')}: charset.keys_file = {show(str(path))}"
            raise UserError(f"{where}: {exc}") from None
    return Charset.default(**kwargs)


@dataclass
class TrainSettings:
    """Everything the training loop reads, with the original's field names where it had them."""

    name: str = "MASTER_Default"
    run_id: str = "example"
    seed: int = 123
    deterministic: bool = True
    distributed: bool = True
    local_world_size: int = 1
    epochs: int = 10
    max_len_step: int | None = None  # steps per epoch cap (the original's field)
    max_steps: int | None = None  # total optimizer steps cap (ours)
    do_validation: bool = True
    validation_start_epoch: int = 1
    log_step_interval: int = 50
    val_step_interval: int = 2000
    save_dir: str = "saved"
    save_period: int = 1  # epochs between checkpoint-epoch<N>.pth
    save_step_interval: int = 1000  # steps between checkpoint-latest.pth (ours: no work lost mid-epoch)
    monitor: str = "max word_acc"
    early_stop: int = -1
    tensorboard: bool = False
    sync_batch_norm: bool = False
    train_batch_size: int = 64
    val_batch_size: int = 64
    train_num_workers: int = 2
    val_num_workers: int = 2
    optimizer: dict = field(default_factory=lambda: {"type": "Adam", "args": {"lr": 0.0004}})
    lr_scheduler: dict = field(default_factory=lambda: {"type": None, "args": {}})
    grad_clip: float | None = 5.0
    label_smoothing: float = 0.0
    amp: str | None = None  # "bf16" | "fp16" | None
    grad_accum_steps: int = 1
    bucket_pool: int = 0  # batches per width-sorted pool (train/sampler.py WidthPools); 0: off
    compile: bool = False
    auto_resume: bool = False  # run dir save_dir/name/run_id (no timestamp); resume its checkpoint-latest.pth
    nan_patience: int = 20  # consecutive non-finite losses before the run stops
    val_max_samples: int | None = None
    progress: bool = True


def train_settings(config: dict) -> TrainSettings:
    """TrainSettings from the top level, `trainer`, loaders, `optimizer` and `lr_scheduler` sections."""
    trainer_section = dict(config.get("trainer") or {})
    result = TrainSettings()
    top_keys = ("name", "run_id", "seed", "deterministic", "distributed", "local_world_size")
    top = {k: config[k] for k in top_keys if k in config}
    loader = (config.get("train_loader") or {}).get("args") or {}
    val_loader = (config.get("val_loader") or {}).get("args") or {}
    if "batch_size" in loader:
        result.train_batch_size = int(loader["batch_size"])
    if "batch_size" in val_loader:
        result.val_batch_size = int(val_loader["batch_size"])
    if "num_workers" in loader:
        result.train_num_workers = max(0, int(loader["num_workers"]))
    if "num_workers" in val_loader:
        result.val_num_workers = max(0, int(val_loader["num_workers"]))
    ignored = {"log_verbosity", "monitor_open", "anomaly_detection", "max_len"}
    for key, value in {**top, **trainer_section}.items():
        if key in ignored:
            continue
        if not hasattr(result, key):  # validate_config has warned about it, with the closest known name
            continue
        default = getattr(TrainSettings(), key)
        if value is not None and isinstance(default, bool):
            value = parse_bool(value)
        elif value is not None and isinstance(default, (int, float)) and not isinstance(value, (int, float)):
            try:  # numbers written as strings are accepted; anything else is a clear error, not a traceback later
                value = type(default)(value)
            except (TypeError, ValueError) as exc:
                raise UserError(f"config option {key!r} must be a number, got {value!r}") from exc
        setattr(result, key, value)
    for key in ("optimizer", "lr_scheduler"):
        if key in config and config[key] is not None:
            setattr(result, key, config[key])
    if result.amp not in (None, "bf16", "fp16"):
        raise UserError(f"trainer.amp must be \"bf16\", \"fp16\" or null, got {result.amp!r}")
    return result


@dataclass
class RunSettings:
    """Everything a training run is built from, read and checked from the config before anything is built."""

    trainer: TrainSettings  # the loop's knobs: `trainer`, loaders, optimizer, schedule
    cfg: MasterConfig  # the model's architecture
    charset: Charset
    train_dataset: dict | None  # dataset sections as the config writes them ({"type", "args"})
    val_dataset: dict | None
    augment: bool
    raw_config: dict  # the config without its private keys: saved in each checkpoint and the run folder


def run_settings(config: dict) -> RunSettings:
    """RunSettings from a config dict (as `load_config` returns it: `_path` locates relative keys files)."""
    base_dir = Path(config["_path"]).parent if "_path" in config else None
    return RunSettings(
        trainer=train_settings(config),
        charset=charset_from_config(config, base_dir),
        cfg=model_config(config),
        train_dataset=config.get("train_dataset"),
        val_dataset=config.get("val_dataset"),
        augment=bool(config.get("augment", True)),
        raw_config={k: v for k, v in config.items() if not k.startswith("_")},
    )
