"""The MASTER network: no files, configs or CLI here."""

from __future__ import annotations

from masterocr.model.config import MasterConfig
from masterocr.model.master import MASTER, DecodeOutput
from masterocr.model.presets import PRESETS, get_preset


def build_model(preset_or_config: str | MasterConfig = "paper", charset=None, exportable: bool = False) -> MASTER:
    """Build MASTER from a preset name or a MasterConfig, with one output class per charset entry.

    `charset` is a Charset (its len counts the special tokens) or an int number of classes;
    the default is the original's 95 printable ASCII characters. `exportable` builds the export-safe form
    (see MASTER).
    """
    cfg = get_preset(preset_or_config) if isinstance(preset_or_config, str) else preset_or_config
    if charset is None:
        from masterocr.charset import Charset

        charset = Charset.default()
    num_classes = charset if isinstance(charset, int) else len(charset)
    return MASTER(cfg, num_classes, exportable)


__all__ = ["MASTER", "DecodeOutput", "MasterConfig", "PRESETS", "build_model", "get_preset"]
