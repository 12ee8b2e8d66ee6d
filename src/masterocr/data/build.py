"""Datasets from config entries in the original MASTER's style: `{"type": ..., "args": {...}}`.

This module sits above both the labelled datasets and the synthetic one, so neither imports the other.
"""

from __future__ import annotations

import logging
from typing import Any

from torch.utils.data import Dataset

from masterocr.charset import Charset
from masterocr.data.datasets import JsonlDataset, TextLineDataset
from masterocr.data.lmdb_datasets import LmdbDataset, hierarchy_dataset
from masterocr.data.synth.dataset import SynthDataset
from masterocr.data.synth.linedataset import SynthLineDataset
from masterocr.data.transforms import Augment
from masterocr.errors import UserError

__all__ = ["build_dataset"]

log = logging.getLogger(__name__)

_ARGS = {
    "TextDataset": ({"txt_file"}, {"img_root", "split"}),
    "JsonlDataset": ({"jsonl_file"}, {"img_root"}),
    "LmdbDataset": ({"root"}, set()),
    "hierarchy_dataset": ({"lmdb_dir_root"}, {"select_data"}),
}
_OVERRIDES = {"img_w", "img_h", "training", "keep_ratio", "case_sensitive"}
# arguments of the original MASTER datasets that have no meaning here (transforms are built in)
_IGNORED = {"transform", "target_transform", "convert_to_gray", "testing_with_label_file"}
_TYPES = [*_ARGS, "SynthDataset", "SynthLineDataset"]


def _check_args(kind: str, args: dict[str, Any]) -> None:
    required, optional = _ARGS[kind]
    accepted = sorted(required | optional | _OVERRIDES)
    unknown = sorted(set(args) - required - optional)
    if unknown:
        raise UserError(
            f"unknown argument(s) {unknown} for dataset type {kind}; accepted: {', '.join(accepted)}"
        )
    missing = sorted(required - set(args))
    if missing:
        raise UserError(f"dataset type {kind} needs argument(s) {missing}; accepted: {', '.join(accepted)}")


def _positive_int(kind: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{key} of dataset type {kind} must be a positive integer, got {value!r}")
    return value


def build_dataset(
    spec: dict[str, Any],
    *,
    charset: Charset,
    img_h: int,
    img_w: int,
    in_channels: int = 3,
    keep_ratio: bool = False,
    variable_width: bool = False,
    max_len: int = 100,
    training: bool = False,
    seed: int = 0,
    augment: Augment | None = None,
) -> Dataset:
    """Build a dataset from an original-MASTER-style config entry `{"type": ..., "args": {...}}`.

    Types: TextDataset (txt_file, img_root, split), JsonlDataset (jsonl_file, img_root; the original's
    "JSONDataset" with txt_file is accepted too), LmdbDataset (root, or lmdb_dir_root),
    hierarchy_dataset (lmdb_dir_root, select_data) and SynthDataset (arguments forwarded to
    `masterocr.data.synth.SynthDataset`). img_w, img_h, training, keep_ratio and case_sensitive in args
    override the keywords (note: the original configs set "training": true on validation sets too, where it
    meant "labelled"; augmentation still needs an `augment`, so pass None for validation).
    Raises UserError for unknown types or arguments, or a dataset with no samples.
    """
    kind, args = _entry(spec)
    img_w = _positive_int(kind, "img_w", args.pop("img_w", img_w))
    img_h = _positive_int(kind, "img_h", args.pop("img_h", img_h))
    training = bool(args.pop("training", training))
    keep_ratio = bool(args.pop("keep_ratio", keep_ratio))
    if "case_sensitive" in args:
        case_sensitive = bool(args.pop("case_sensitive"))
        if case_sensitive != charset.case_sensitive:
            charset = Charset(charset.keys, case_sensitive=case_sensitive, normalize=charset.normalize)
    common = dict(
        charset=charset,
        img_h=img_h,
        img_w=img_w,
        in_channels=in_channels,
        keep_ratio=keep_ratio,
        variable_width=variable_width,
        max_len=max_len,
        training=training,
        seed=seed,
        augment=augment,
    )
    kind = _original_names(kind, args)
    dataset = _make(kind, args, common)
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        skipped = dict(getattr(dataset, "skipped", {}))
        raise UserError(f"dataset {kind} {args} has no usable samples (skipped: {skipped}); check its files")
    return dataset


def _entry(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(type, a copy of args without the original's arguments that mean nothing here)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise UserError(f'a dataset entry must look like {{"type": ..., "args": {{...}}}}, got {spec!r}')
    kind = spec["type"]
    args = spec.get("args") or {}
    if not isinstance(args, dict):
        raise UserError(f"the args of dataset type {kind} must be an object, got {args!r}")
    args = dict(args)
    for key in sorted(_IGNORED & args.keys()):
        log.warning("dataset argument %r (from the original MASTER config) is ignored", key)
        del args[key]
    return kind, args


def _original_names(kind: str, args: dict[str, Any]) -> str:
    """Map the original's type and argument names onto ours (in place for args); returns the type."""
    if kind == "JSONDataset":
        kind = "JsonlDataset"
        if "txt_file" in args and "jsonl_file" not in args:
            args["jsonl_file"] = args.pop("txt_file")
    if kind == "LmdbDataset" and "lmdb_dir_root" in args and "root" not in args:
        args["root"] = args.pop("lmdb_dir_root")
    return kind


def _synth_lines(common: dict[str, Any], args: dict[str, Any]) -> Dataset:
    """Lines rendered on the fly at the model's height, up to its width (img_w is the maximum line width)."""
    if not common["variable_width"]:
        raise UserError("dataset type SynthLineDataset needs a variable-width model (e.g. the line preset)")
    base = dict(
        charset=common["charset"], height=common["img_h"], max_width=common["img_w"],
        in_channels=common["in_channels"], training=common["training"], max_len=common["max_len"],
        seed=common["seed"],
    )  # fmt: skip
    for key, limit in (("max_len", common["max_len"]), ("max_width", common["img_w"])):
        if args.get(key, 0) > limit:  # a curriculum may draw shorter lines than the model reads, never longer
            raise UserError(f"SynthLineDataset {key} {args[key]} exceeds the model's {limit}; lower it")
    return SynthLineDataset(**{**base, **args})  # args (e.g. a validation seed) win


def _make(kind: str, args: dict[str, Any], common: dict[str, Any]) -> Dataset:
    if kind == "SynthDataset":
        words = {k: v for k, v in common.items() if k != "variable_width"}  # word crops have one width
        return SynthDataset(**{**words, **args})  # args (e.g. a validation seed) win
    if kind == "SynthLineDataset":
        return _synth_lines(common, args)
    if kind not in _ARGS:
        raise UserError(f"unknown dataset type {kind!r}; use one of: {', '.join(_TYPES)}")
    _check_args(kind, args)
    if kind == "TextDataset":
        return TextLineDataset(args["txt_file"], args.get("img_root"), split=args.get("split", ","), **common)
    if kind == "JsonlDataset":
        return JsonlDataset(args["jsonl_file"], args.get("img_root"), **common)
    if kind == "LmdbDataset":
        return LmdbDataset(args["root"], **common)
    return hierarchy_dataset(args["lmdb_dir_root"], args.get("select_data", "/"), **common)
