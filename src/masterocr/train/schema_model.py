"""Config schema of `model_arch` (the network) and `charset` (the vocabulary); see masterocr.train.schema."""

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from masterocr.model.config import DECODE_MODES
from masterocr.model.presets import PRESETS
from masterocr.train.schema_fields import (
    Bool,
    Flag,
    Int,
    IntText,
    Name,
    Num,
    NumText,
    Open,
    PathText,
    absent,
    ignored,
)

PresetName = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
Fusion = Literal["channel_concat", "channel_add", "channel_mul"]
DecodeMode = Literal[DECODE_MODES]  # type: ignore[valid-type]


class CommonKwargs(Open):
    """Sizes shared by the encoder and decoder (the original's `common_kwargs`)."""

    n_class: Any = ignored("ignored: the number of classes comes from the charset")
    with_encoder: Flag | None = Field(None, description="run a transformer encoder over the feature map")
    model_size: IntText(ge=1) | None = Field(None, description="d_model: width of the transformer")
    multiheads: IntText(ge=1) | None = Field(None, description="attention heads (nhead); divides model_size")
    max_len: IntText(ge=1) | None = Field(None, description="longest text the decoder produces")


class GcbKwargs(Open):
    """Multi-Aspect Global Context attention in the backbone (the original's `gcb_kwargs`)."""

    ratio: NumText(gt=0, le=1) | None = Field(None, description="bottleneck ratio of the context transform")
    headers: IntText(ge=1) | None = Field(None, description="context attention heads")
    att_scale: Flag | None = Field(None, description="scale attention logits when headers > 1")
    fusion_type: Fusion | None = Field(None, description="how the context is fused into the features")
    layers: Annotated[list[Flag], Field(min_length=4, max_length=4)] | None = Field(
        None, description="for each of the 4 backbone layers: whether it has context attention"
    )
    all_blocks: Flag | None = Field(None, description="attention in every block of a chosen layer, not the first")


class BackboneKwargs(Open):
    """The ResNet-like backbone (the original's `backbone_kwargs`)."""

    in_channels: IntText(ge=1, le=3) | None = Field(None, description="1 (grayscale) or 3 (RGB)")
    gcb_kwargs: GcbKwargs | None = Field(None, description="global context attention")


class StackKwargs(Open):
    """A transformer stack (the original's `encoder_kwargs` / `decoder_kwargs`)."""

    stacks: IntText(ge=1) | None = Field(None, description="number of layers")
    dropout: NumText(ge=0, lt=1) | None = Field(None, description="dropout rate (the decoder's is used for both)")
    feed_forward_size: IntText(ge=1) | None = Field(None, description="d_ff (the decoder's is used for both)")
    share_parameter: Flag | None = Field(None, description="one layer reused for every stack (decoder's is used)")


class ModelArgs(Open):
    """Network options: a named preset and/or the original's kwargs sections; direct keys override both."""

    preset: PresetName | None = Field(None, description="a named model size; the other options override it")
    common_kwargs: CommonKwargs | None = Field(None, description="transformer sizes")
    backbone_kwargs: BackboneKwargs | None = Field(None, description="backbone options")
    encoder_kwargs: StackKwargs | None = Field(None, description="encoder stack (used when with_encoder)")
    decoder_kwargs: StackKwargs | None = Field(None, description="decoder stack")
    widths: Annotated[list[Int(ge=1)], Field(min_length=6, max_length=6)] = absent(
        "backbone output channels: stem conv1, stem conv2, layer1..layer4 (the last equals model_size)"
    )
    blocks: Annotated[list[Int(ge=1)], Field(min_length=4, max_length=4)] = absent(
        "residual blocks in each of the 4 backbone layers"
    )
    img_h: Int(ge=8, multiple_of=8) = absent("input height in pixels (a multiple of 8; default: the dataset's)")
    img_w: Int(ge=4, multiple_of=4) = absent("input width in pixels (a multiple of 4; default: the dataset's)")
    keep_ratio: Bool = absent("resize to the height and right-pad instead of stretching to the width")
    variable_width: Bool = absent(
        "lines of any width up to img_w, batched by padding with the padding masked (needs keep_ratio)"
    )
    max_len: Int(ge=1) = absent("longest text the decoder produces")
    d_ff: Int(ge=1) = absent("feed-forward width of the transformer layers")
    ctc_weight: Num(ge=0, le=1) = absent(
        "weight of the CTC branch's loss: (1 - w) * attention + w * CTC; 0 builds no CTC branch"
    )
    decode: DecodeMode = absent("default reading: attention, ctc (one pass) or joint (needs ctc_weight > 0)")


class ModelArch(Open):
    """The network: `{"type": "MASTER", "args": {...}}`."""

    type: Literal["MASTER"] | None = Field(None, description="the architecture; only MASTER")
    args: ModelArgs | None = Field(None, description="network options")


class CharsetSpec(Open):
    """The vocabulary: a keys file or the keys themselves; the original's 95 ASCII keys when neither is given."""

    keys: Name | None = Field(None, description="every character the model reads, in one string")
    keys_file: PathText | None = Field(None, description="a UTF-8 file of the characters (relative: to the config)")
    case_sensitive: Flag | None = Field(None, description="false: fold labels to the case the keys have")
    normalize: Flag | None = Field(None, description="NFKC-normalize labels (default true)")

    @model_validator(mode="after")
    def _one_source(self) -> "CharsetSpec":
        if self.keys is not None and self.keys_file is not None:
            raise ValueError("give keys or keys_file, not both")
        return self


def _file_shorthand(value: Any) -> Any:
    return {"keys_file": value} if isinstance(value, str) else value


CharsetField = Annotated[CharsetSpec, BeforeValidator(_file_shorthand, json_schema_input_type=CharsetSpec | PathText)]
