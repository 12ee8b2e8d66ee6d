"""The one place that reads the original MASTER config JSON and turns it into typed settings.

Configs are data: parsed with `json`, never evaluated. An original `config.json` with only its paths changed
runs as it is; our additions are optional keys (`preset`, `charset`, `amp`, ...) described in docs/config.md.
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
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"config {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    if not isinstance(cfg, dict):
        raise UserError(f"config {path} must hold a JSON object at the top level")
    cfg.setdefault("_path", str(path))
    return cfg


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply `key.sub=value` overrides; values are parsed as JSON when they parse, else kept as strings."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: write key=value, e.g. --set trainer.epochs=3")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = cfg
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {key}: {p} is not a section of the config")
        node[parts[-1]] = value
    return cfg


def _bool(value: Any) -> bool:
    """The original wrote booleans as strings too ('false' is truthy in Python: a bug we do not repeat)."""
    if isinstance(value, str):
        if value.strip().lower() in ("false", "0", "no", "off", ""):
            return False
        if value.strip().lower() in ("true", "1", "yes", "on"):
            return True
        raise UserError(f"expected true or false, got {value!r}")
    return bool(value)


def dataset_args(cfg: dict, which: str = "train_dataset") -> dict:
    return dict((cfg.get(which) or {}).get("args") or {})


def model_config(cfg: dict) -> MasterConfig:
    """MasterConfig from the config's `model_arch` (+ image size from the training dataset args)."""
    args = dict((cfg.get("model_arch") or {}).get("args") or {})
    overrides: dict[str, Any] = {}
    common = args.get("common_kwargs") or {}
    backbone = args.get("backbone_kwargs") or {}
    gcb = backbone.get("gcb_kwargs") or {}
    enc = args.get("encoder_kwargs") or {}
    dec = args.get("decoder_kwargs") or {}
    pairs = [
        (common, "with_encoder", "with_encoder", _bool),
        (common, "model_size", "d_model", int),
        (common, "multiheads", "nhead", int),
        (common, "max_len", "max_len", int),
        (backbone, "in_channels", "in_channels", int),
        (gcb, "ratio", "gca_ratio", float),
        (gcb, "headers", "gca_headers", int),
        (gcb, "att_scale", "gca_att_scale", _bool),
        (gcb, "fusion_type", "gca_fusion", str),
        (gcb, "layers", "gca_layers", lambda v: tuple(_bool(x) for x in v)),
        (gcb, "all_blocks", "gca_all_blocks", _bool),
        (enc, "stacks", "num_encoder_layers", int),
        (dec, "stacks", "num_decoder_layers", int),
        (dec, "dropout", "dropout", float),
        (dec, "feed_forward_size", "d_ff", int),
        # a missing share_parameter means false (the original defaulted to the truthy string 'false')
        (dec, "share_parameter", "share_parameter", _bool),
    ]
    for section, key, name, conv in pairs:
        if key in section and section[key] is not None:
            overrides[name] = conv(section[key])
    for key in ("widths", "blocks", "img_h", "img_w", "keep_ratio", "max_len", "d_ff"):
        if key in args:
            overrides[key] = args[key]
    data = dataset_args(cfg)
    for key in ("img_h", "img_w", "keep_ratio"):
        if key in data and key not in args:
            overrides[key] = data[key]
    if "max_len" in cfg.get("trainer", {}):
        overrides["max_len"] = int(cfg["trainer"]["max_len"])
    preset = args.get("preset")
    try:
        if preset:
            return get_preset(preset, **overrides)
        return MasterConfig(**overrides)
    except (ValueError, TypeError) as exc:
        raise UserError(f"model_arch in {cfg.get('_path', 'the config')}: {exc}") from exc


def charset_from_config(cfg: dict, base_dir: Path | None = None) -> Charset:
    """Charset from `charset: {keys_file, keys, case_sensitive}`; the original's 95 ASCII keys by default."""
    spec = cfg.get("charset") or {}
    if isinstance(spec, str):
        spec = {"keys_file": spec}
    case = dataset_args(cfg).get("case_sensitive", spec.get("case_sensitive", True))
    kwargs = {"case_sensitive": _bool(case), "normalize": _bool(spec.get("normalize", True))}
    if spec.get("keys"):
        return Charset(spec["keys"], **kwargs)
    if spec.get("keys_file"):
        path = Path(spec["keys_file"])
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        return Charset.from_file(path, **kwargs)
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
    compile: bool = False
    auto_resume: bool = False  # run dir save_dir/name/run_id (no timestamp); resume its checkpoint-latest.pth
    nan_patience: int = 20  # consecutive non-finite losses before the run stops
    val_max_samples: int | None = None
    progress: bool = True


def train_settings(cfg: dict) -> TrainSettings:
    """TrainSettings from the top level, `trainer`, loaders, `optimizer` and `lr_scheduler` sections."""
    t = dict(cfg.get("trainer") or {})
    s = TrainSettings()
    top_keys = ("name", "run_id", "seed", "deterministic", "distributed", "local_world_size")
    top = {k: cfg[k] for k in top_keys if k in cfg}
    loader = (cfg.get("train_loader") or {}).get("args") or {}
    val_loader = (cfg.get("val_loader") or {}).get("args") or {}
    if "batch_size" in loader:
        s.train_batch_size = int(loader["batch_size"])
    if "batch_size" in val_loader:
        s.val_batch_size = int(val_loader["batch_size"])
    if "num_workers" in loader:
        s.train_num_workers = max(0, int(loader["num_workers"]))
    if "num_workers" in val_loader:
        s.val_num_workers = max(0, int(val_loader["num_workers"]))
    ignored = {"log_verbosity", "monitor_open", "anomaly_detection", "max_len"}
    for key, value in {**top, **t}.items():
        if key in ignored:
            continue
        if not hasattr(s, key):
            log.warning("config: ignoring unknown trainer option %r", key)
            continue
        default = getattr(TrainSettings(), key)
        if value is not None and isinstance(default, bool):
            value = _bool(value)
        elif value is not None and isinstance(default, (int, float)) and not isinstance(value, (int, float)):
            try:  # numbers written as strings are accepted; anything else is a clear error, not a traceback later
                value = type(default)(value)
            except (TypeError, ValueError) as exc:
                raise UserError(f"config option {key!r} must be a number, got {value!r}") from exc
        setattr(s, key, value)
    for key in ("optimizer", "lr_scheduler"):
        if key in cfg and cfg[key] is not None:
            setattr(s, key, cfg[key])
    if s.amp not in (None, "bf16", "fp16"):
        raise UserError(f"trainer.amp must be \"bf16\", \"fp16\" or null, got {s.amp!r}")
    return s
