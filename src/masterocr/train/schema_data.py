"""Config schema of `train_dataset`/`val_dataset` (per dataset type) and the loaders; see masterocr.train.schema."""

from typing import Any, Literal

from pydantic import Field, model_validator

from masterocr.train.schema_fields import (
    Bool,
    Closed,
    Flag,
    Int,
    IntText,
    Name,
    Num,
    OneOrList,
    Open,
    PathText,
    Text,
    absent,
    ignored,
    tagged_sections,
)

_IGNORED = "the original's option; ignored (transforms are built in)"


class CommonDatasetArgs(Closed):
    """Arguments every dataset type accepts (they override the model's input settings for that set)."""

    img_w: Int(ge=1) = absent("image width in pixels (default: the model's)")
    img_h: Int(ge=1) = absent("image height in pixels (default: the model's)")
    training: Bool = absent("the original's flag (a labelled set); augmentation is only applied to train_dataset")
    keep_ratio: Bool = absent("resize to the height and right-pad instead of stretching")
    case_sensitive: Bool = absent("false: fold labels to the charset's case")
    transform: Any = ignored(_IGNORED)
    target_transform: Any = ignored(_IGNORED)
    convert_to_gray: Any = ignored(_IGNORED)
    testing_with_label_file: Any = ignored(_IGNORED)


class LabelFileArgs(CommonDatasetArgs):
    img_root: PathText | None = Field(None, description="folder the image names are relative to (confined to it)")


class TextDatasetArgs(LabelFileArgs):
    """The original's txt labels: one `ImageFile<split>Label` per line."""

    txt_file: PathText = Field(description="the label file")
    split: Name = absent('separator between image name and label (default ",")')


class JsonlDatasetArgs(LabelFileArgs):
    """JSON lines: `{"ImageFile": "x.png", "Label": "text"}` per line."""

    jsonl_file: PathText = Field(description="the label file")


class OriginalJsonArgs(LabelFileArgs):
    """The original's JSONDataset: JSON-lines labels named by txt_file (or jsonl_file)."""

    txt_file: PathText = absent("the label file")
    jsonl_file: PathText = absent("the label file (instead of txt_file)")

    @model_validator(mode="after")
    def _needs_file(self) -> "OriginalJsonArgs":
        if self.txt_file is None and self.jsonl_file is None:
            raise ValueError("JSONDataset needs txt_file (or jsonl_file): the label file")
        return self


class LmdbDatasetArgs(CommonDatasetArgs):
    """One LMDB folder (holding data.mdb) in the clovaai layout."""

    root: PathText = absent("the LMDB folder")
    lmdb_dir_root: PathText = absent("the LMDB folder (instead of root)")

    @model_validator(mode="after")
    def _needs_root(self) -> "LmdbDatasetArgs":
        if self.root is None and self.lmdb_dir_root is None:
            raise ValueError("LmdbDataset needs root (or lmdb_dir_root): the LMDB folder")
        return self


class HierarchyDatasetArgs(CommonDatasetArgs):
    """Every LMDB under a folder that select_data picks."""

    lmdb_dir_root: PathText = Field(description="the folder searched for LMDBs")
    select_data: Text | None = Field(None, description='"-"-joined folder prefixes, e.g. "MJ-ST"; "/" for all')


class SynthDatasetArgs(CommonDatasetArgs):
    """Word images rendered on the fly."""

    length: Int(ge=1) = absent("samples per epoch (default 100000)")
    fonts: Literal["train", "heldout", "all"] = absent('font split (default "train")')
    font_dirs: OneOrList(PathText) | None = Field(None, description="font folders or files (default: the system's)")
    holdout_fraction: Num(ge=0, le=1) = absent("share of font families held out (default 0.15)")
    seed: Int() = absent("rendering seed (default: the config's seed)")


class SynthLineDatasetArgs(CommonDatasetArgs):
    """Text lines rendered on the fly (variable-width models): Latin, Chinese and mixed running text."""

    length: Int(ge=1) = absent("samples per epoch (default 100000)")
    fonts: Literal["train", "heldout", "all"] = absent('font split (default "train"; LXGW WenKai is held out)')
    font_dirs: OneOrList(PathText) | None = Field(None, description="font folders or files (default: the system's)")
    kinds: dict[Literal["latin", "zh", "mixed"], Num(ge=0)] | None = Field(
        None, description='share of each kind of line, e.g. {"latin": 0.4, "zh": 0.3, "mixed": 0.3}'
    )
    seed: Int() = absent("rendering seed (default: the config's seed)")
    max_len: Int(ge=1) = absent("most characters per line, at most the model's max_len (default: the model's)")
    max_width: Int(ge=32) = absent("widest line in pixels, at most the model's img_w (default: the model's)")
    short_epochs: Int(ge=0) = absent(
        "length curriculum: the first N epochs draw short chunks (3-30 Latin characters, 2-12 hanzi; default 0)"
    )


DATASET_ARGS: dict[str, type[CommonDatasetArgs]] = {
    "TextDataset": TextDatasetArgs,
    "JsonlDataset": JsonlDatasetArgs,
    "JSONDataset": OriginalJsonArgs,
    "LmdbDataset": LmdbDatasetArgs,
    "hierarchy_dataset": HierarchyDatasetArgs,
    "SynthDataset": SynthDatasetArgs,
    "SynthLineDataset": SynthLineDatasetArgs,
}


DatasetSection = tagged_sections(DATASET_ARGS, "dataset type")


class LoaderArgs(Open):
    """DataLoader options; batch_size and num_workers are used, the original's others are accepted."""

    batch_size: IntText(ge=1) = absent("images per batch (per process)")
    num_workers: IntText(ge=0) = absent("loader worker processes (0: load in the main process)")
    shuffle: Flag | None = ignored("the original's option; ignored (the training set is always shuffled)")
    drop_last: Flag | None = ignored("the original's option; ignored (chosen from the set size)")
    pin_memory: Flag | None = ignored("the original's option; ignored")


class Loader(Open):
    """`{"type": "DataLoader", "args": {...}}`."""

    type: Literal["DataLoader"] | None = Field(None, description="only DataLoader")
    args: LoaderArgs | None = Field(None, description="loader options")
