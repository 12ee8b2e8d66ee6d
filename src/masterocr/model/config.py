"""MasterConfig: every size and option of the network, in one dataclass (presets are instances of it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


class ConfigError(ValueError):
    """A model option of the wrong type or outside its allowed range; the message names the field."""


# documented caps: far above every preset, low enough that no config can ask for a layer that fills memory
INT_RANGES: dict[str, tuple[int, int]] = {
    "img_h": (8, 1024), "img_w": (4, 8192), "in_channels": (1, 3), "gca_headers": (1, 64),
    "d_model": (1, 4096), "nhead": (1, 64), "d_ff": (1, 16384), "num_decoder_layers": (1, 48),
    "num_encoder_layers": (0, 48), "max_len": (1, 10_000),
}
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "gca_ratio": (0.001, 1.0), "dropout": (0.0, 1.0), "ctc_weight": (0.0, 1.0),
}
DECODE_MODES = ("attention", "ctc", "joint")
BOOL_FIELDS = ("keep_ratio", "gca_all_blocks", "gca_att_scale", "with_encoder", "share_parameter", "variable_width")
WIDTH_RANGE, BLOCKS_RANGE = (1, 4096), (0, 32)
MAX_CLASSES = 100_000


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: object, lo: int, hi: int) -> None:
    """ConfigError unless `value` is an int (not a bool) in [lo, hi]."""
    if not _is_int(value) or not lo <= value <= hi:
        raise ConfigError(f"model option {name} is {value!r}; it must be an integer from {lo} to {hi}")


def check_num_classes(n: object) -> None:
    """ConfigError unless `n` (charset size, special tokens included) is within MAX_CLASSES."""
    check_int("num_classes", n, 4, MAX_CLASSES)


def _check_types(cfg: MasterConfig) -> None:
    for name, (lo, hi) in INT_RANGES.items():
        check_int(name, getattr(cfg, name), lo, hi)
    for name, (lo, hi) in FLOAT_RANGES.items():
        value = getattr(cfg, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
            raise ConfigError(f"model option {name} is {value!r}; it must be a number from {lo} to {hi}")
    for name in BOOL_FIELDS:
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"model option {name} is {getattr(cfg, name)!r}; it must be true or false")
    for name, count, (lo, hi) in (("widths", 6, WIDTH_RANGE), ("blocks", 4, BLOCKS_RANGE)):
        value = getattr(cfg, name)
        if not isinstance(value, (list, tuple)) or len(value) != count:
            raise ConfigError(f"model option {name} is {value!r}; it must be a list of {count} integers")
        for i, v in enumerate(value):
            check_int(f"{name}[{i}]", v, lo, hi)
    gca = cfg.gca_layers
    if not isinstance(gca, (list, tuple)) or len(gca) != 4 or not all(isinstance(g, bool) for g in gca):
        raise ConfigError(f"model option gca_layers is {gca!r}; it must be a list of 4 true/false values")
    if cfg.decode not in DECODE_MODES:
        raise ConfigError(f"model option decode is {cfg.decode!r}; it must be one of {', '.join(DECODE_MODES)}")
    if cfg.decode != "attention" and not cfg.ctc_weight:
        raise ConfigError(f"model option decode is {cfg.decode!r}, which needs the CTC branch: set ctc_weight > 0")
    if not isinstance(cfg.gca_fusion, str) or not isinstance(cfg.extra, dict):
        raise ConfigError("model option gca_fusion must be a string and extra a JSON object")


@dataclass
class MasterConfig:
    """Every size and option of the network. Each field is checked on construction (type, and the caps of
    INT_RANGES, FLOAT_RANGES, WIDTH_RANGE, BLOCKS_RANGE): a ConfigError names the field and the allowed range."""

    # input: the original trained on 3x48x160, resized without keeping the aspect ratio
    img_h: int = 48
    img_w: int = 160
    in_channels: int = 3
    keep_ratio: bool = False  # preprocessing: resize to height and right-pad instead of plain resize
    # text lines: keep-ratio inputs of any width up to img_w, batched by right-padding to the widest; the padded
    # positions are masked (backbone convolutions, GCA pooling, cross-attention) and the memory is flattened
    # column by column, so a line's output does not depend on the other widths in its batch
    variable_width: bool = False

    # backbone: output channels of (stem conv1, stem conv2, layer1, layer2, layer3, layer4); the conv after
    # each layer keeps that layer's width. The paper's ResNet-31-like stack is the default.
    widths: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
    blocks: tuple[int, ...] = (1, 2, 5, 3)

    # Multi-Aspect Global Context attention
    gca_layers: tuple[bool, ...] = (False, True, True, True)
    gca_all_blocks: bool = False  # the original puts GCA only in the first block of each chosen layer
    gca_headers: int = 1
    gca_ratio: float = 0.0625
    gca_fusion: str = "channel_concat"  # or channel_add, channel_mul
    gca_att_scale: bool = True  # scale logits by sqrt(channels per head) when headers > 1 (the original never did)

    # transformer
    d_model: int = 512
    nhead: int = 8
    d_ff: int = 2048
    num_decoder_layers: int = 3
    with_encoder: bool = False
    num_encoder_layers: int = 3
    dropout: float = 0.2
    share_parameter: bool = False  # one layer reused for every stack (the original's option)
    max_len: int = 100  # longest text the decoder produces (the original's STRING_MAX_LEN)

    # joint CTC-attention (model/ctc.py): a CTC branch on the memory, trained with loss
    # (1 - ctc_weight) * attention cross-entropy + ctc_weight * CTC; 0 builds no branch (the paper's model).
    # `decode` is the default reading: attention (cached greedy), ctc (one pass) or joint (attention that the
    # CTC branch bounds and rescores)
    ctc_weight: float = 0.0
    decode: str = "attention"

    extra: dict = field(default_factory=dict)  # free-form metadata kept with checkpoints

    def __post_init__(self) -> None:
        _check_types(self)
        self.widths = tuple(int(w) for w in self.widths)
        self.blocks = tuple(int(b) for b in self.blocks)
        self.gca_layers = tuple(bool(g) for g in self.gca_layers)
        if len(self.widths) != 6 or len(self.blocks) != 4 or len(self.gca_layers) != 4:
            raise ConfigError("widths needs 6 entries, blocks and gca_layers 4 each")
        if self.widths[-1] != self.d_model:
            raise ConfigError(f"the backbone's last width ({self.widths[-1]}) must equal d_model ({self.d_model})")
        if self.d_model % self.nhead:
            raise ConfigError(f"model option d_model {self.d_model} is not divisible by nhead {self.nhead}; "
                              "pick an nhead that divides d_model")
        if self.gca_fusion not in ("channel_concat", "channel_add", "channel_mul"):
            raise ConfigError(f"unknown gca_fusion {self.gca_fusion!r}; use channel_concat, channel_add or channel_mul")
        if self.img_h % 8 or self.img_w % 4:
            raise ConfigError(f"input {self.img_h}x{self.img_w}: height must be a multiple of 8, width of 4")
        if self.variable_width and not self.keep_ratio:
            raise ConfigError("variable_width needs keep_ratio: lines are resized to the height, keeping the ratio")
        if self.in_channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 (grayscale) or 3 (RGB), got {self.in_channels}")

    @property
    def memory_len(self) -> int:
        """Number of memory vectors the encoder yields: (H/8) * (W/4)."""
        return (self.img_h // 8) * (self.img_w // 4)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("widths", "blocks", "gca_layers"):
            d[k] = list(d[k])
        # models without the newer options write the configs (and model.json) they always wrote
        for name, default in (("variable_width", False), ("ctc_weight", 0.0), ("decode", "attention")):
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MasterConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"a model config must be a JSON object, not {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
