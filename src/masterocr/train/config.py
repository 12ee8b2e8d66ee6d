"""The one place that reads the original MASTER config JSON and turns it into typed settings.

Configs are data: parsed with `json`, never evaluated. An original `config.json` with only its paths changed
runs as it is; our additions are optional keys (`preset`, `charset`, `amp`, ...) described in docs/config.md.
Names: `config` is the JSON as a dict, `settings` the typed `RunSettings` built from it, `cfg` a `MasterConfig`.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masterocr.charset import Charset
from masterocr.errors import UserError
from masterocr.files import as_path, read_json
from masterocr.model import MasterConfig, get_preset
from masterocr.train.schema import Trainer, ValidatedConfig, validate_config
from masterocr.train.schema_errors import one_line, show
from masterocr.train.schema_fields import FALSE_WORDS, TRUE_WORDS
from masterocr.train.schema_model import CharsetSpec, ModelArgs

log = logging.getLogger(__name__)


def load_config(path: str | Path) -> dict:
    """Read a JSON config file through the guarded reader (a regular file, size and nesting capped; nothing in
    it is executed) and check it against the schema; the plain dict, with `_path` set."""
    path = as_path(path, "config")
    config = read_json(path, "config", "pass a JSON config file with -c")
    if not isinstance(config, dict):
        raise UserError(f"config {path} must hold a JSON object at the top level")
    validate_config(config, path)  # types, ranges, unknown keys, before anything is built
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


def _source(config: dict) -> str:
    return str(config.get("_path", "the config"))


def _validated(config: dict | ValidatedConfig) -> ValidatedConfig:
    return config if isinstance(config, ValidatedConfig) else validate_config(config, _source(config))


def dataset_args(config: dict, which: str = "train_dataset") -> dict:
    """The `args` of a dataset section (`train_dataset` by default) as the config writes them, a fresh dict."""
    return dict((config.get(which) or {}).get("args") or {})


# (section of model_arch.args, its key, MasterConfig's field) of the original's kwargs sections
_KWARGS = (
    ("common_kwargs", "with_encoder", "with_encoder"), ("common_kwargs", "model_size", "d_model"),
    ("common_kwargs", "multiheads", "nhead"), ("common_kwargs", "max_len", "max_len"),
    ("backbone_kwargs", "in_channels", "in_channels"), ("encoder_kwargs", "stacks", "num_encoder_layers"),
    ("decoder_kwargs", "stacks", "num_decoder_layers"), ("decoder_kwargs", "dropout", "dropout"),
    ("decoder_kwargs", "feed_forward_size", "d_ff"),
    # a missing share_parameter means false (the original defaulted to the truthy string 'false')
    ("decoder_kwargs", "share_parameter", "share_parameter"),
)
_GCB = (("ratio", "gca_ratio"), ("headers", "gca_headers"), ("att_scale", "gca_att_scale"),
        ("fusion_type", "gca_fusion"), ("layers", "gca_layers"), ("all_blocks", "gca_all_blocks"))
_DIRECT = ("widths", "blocks", "img_h", "img_w", "keep_ratio", "variable_width", "max_len", "d_ff", "ctc_weight",
           "decode")


def model_config(config: dict | ValidatedConfig, source: str | None = None) -> MasterConfig:
    """MasterConfig from the config's `model_arch` (+ image size from the training dataset args, max_len from
    trainer): the validated values, mapped onto MasterConfig's names. `source` names the config in messages."""
    v = _validated(config)
    source = source or (_source(config) if isinstance(config, dict) else "the config")
    args = v.model_arch.args if v.model_arch is not None and v.model_arch.args is not None else ModelArgs()
    overrides: dict[str, Any] = {}
    for section, key, name in _KWARGS:
        value = getattr(getattr(args, section), key, None) if getattr(args, section) is not None else None
        if value is not None:
            overrides[name] = value
    gcb = args.backbone_kwargs.gcb_kwargs if args.backbone_kwargs is not None else None
    for key, name in _GCB if gcb is not None else ():
        if getattr(gcb, key) is not None:
            overrides[name] = getattr(gcb, key)
    overrides.update({k: getattr(args, k) for k in _DIRECT if k in args.model_fields_set})
    data = v.train_dataset.args if v.train_dataset is not None else None
    for key in ("img_h", "img_w", "keep_ratio"):
        if data is not None and key in data.model_fields_set and key not in args.model_fields_set:
            overrides[key] = getattr(data, key)
    if v.trainer.max_len is not None:
        overrides["max_len"] = v.trainer.max_len
    try:
        return get_preset(args.preset, **overrides) if args.preset else MasterConfig(**overrides)
    except (ValueError, TypeError) as exc:  # what the schema cannot see: sizes that do not fit each other
        raise UserError(f"{one_line(source)}: model_arch: {exc}") from exc


def charset_from_config(config: dict | ValidatedConfig, base_dir: Path | None = None,
                        source: str | None = None) -> Charset:
    """Charset from `charset: {keys_file, keys, case_sensitive}`; the original's 95 ASCII keys by default."""
    v = _validated(config)
    source = source or (_source(config) if isinstance(config, dict) else "the config")
    spec = v.charset or CharsetSpec()
    data = v.train_dataset.args if v.train_dataset is not None else None
    case = data.case_sensitive if data is not None and data.case_sensitive is not None else spec.case_sensitive
    kwargs = {"case_sensitive": True if case is None else case,
              "normalize": True if spec.normalize is None else spec.normalize}
    try:
        if spec.keys:
            return Charset(spec.keys, **kwargs)
        if spec.keys_file:
            path = Path(spec.keys_file)
            if not path.is_absolute() and base_dir is not None and not path.exists():
                path = base_dir / path
            return Charset.from_file(path, **kwargs)
    except UserError as exc:  # the charset's own message, with the config and the field that named it
        field = f"charset.keys_file = {show(str(path))}" if spec.keys_file else "charset.keys"
        raise UserError(f"{one_line(source)}: {field}: {exc}") from None
    return Charset.default(**kwargs)


def train_settings(config: dict | ValidatedConfig) -> Trainer:
    """The training loop's settings (see ValidatedConfig.trainer_settings), validated."""
    return _validated(config).trainer_settings()


TrainSettings = Trainer  # the name the loop's settings had before the schema became them


@dataclass
class RunSettings:
    """Everything a training run is built from, read and checked from the config before anything is built."""

    trainer: Trainer  # the loop's knobs: `trainer`, loaders, optimizer, schedule (validated, defaults filled)
    cfg: MasterConfig  # the model's architecture
    charset: Charset
    train_dataset: dict | None  # dataset sections as the config writes them ({"type", "args"})
    val_dataset: dict | None
    augment: bool
    raw_config: dict  # the config without its private keys: saved in each checkpoint and the run folder
    validated: ValidatedConfig | None = None  # the schema's models of the whole config


def run_settings(config: dict, source: str | None = None, training: bool = False) -> RunSettings:
    """RunSettings from a config dict (as `load_config` returns it: `_path` locates relative keys files),
    validated once here; `source` names the config in messages (default: its `_path`)."""
    source = source or _source(config)
    v = validate_config(config, source, training=training)
    base_dir = Path(config["_path"]).parent if "_path" in config else None
    return RunSettings(
        trainer=v.trainer_settings(),
        charset=charset_from_config(v, base_dir, source),
        cfg=model_config(v, source),
        train_dataset=config.get("train_dataset"),
        val_dataset=config.get("val_dataset"),
        augment=v.augment,
        raw_config={k: v for k, v in config.items() if not k.startswith("_")},
        validated=v,
    )
