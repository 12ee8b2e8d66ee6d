"""Vocabulary: special tokens, encode/decode, out-of-vocabulary counting.

Index layout follows the original's label converter (the model file had SOS and EOS swapped, a defect):
PAD=0, EOS=1, SOS=2, UNK=3, characters from 4.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import torch

from masterocr.errors import UserError, require_regular_file

PAD, EOS, SOS, UNK = 0, 1, 2, 3
NUM_SPECIAL = 4


def normalize_text(text: str) -> str:
    """NFKC-normalise a label so that e.g. full-width letters and ligatures map to plain characters."""
    return unicodedata.normalize("NFKC", text)


class Charset:
    """A character vocabulary with the four special tokens in front.

    `case_sensitive=False` lower-cases every label before encoding (the original's datasets did this);
    `normalize=True` applies Unicode NFKC to labels first. Characters outside the vocabulary become UNK and
    are counted in `unknown` (a Counter of character -> occurrences) so callers can report them.
    """

    def __init__(self, keys: str, case_sensitive: bool = True, normalize: bool = True) -> None:
        if not keys:
            raise UserError("the charset is empty: give at least one character (e.g. a keys.txt file)")
        seen: dict[str, int] = {}
        for ch in keys:
            seen.setdefault(ch, len(seen))  # duplicates in a keys file are ignored, order kept
        self.keys = "".join(seen)
        self.case_sensitive = case_sensitive
        self.normalize = normalize
        self._index = {ch: i + NUM_SPECIAL for i, ch in enumerate(self.keys)}
        self.unknown: Counter[str] = Counter()

    # construction -------------------------------------------------------------------------------------------
    @classmethod
    def default(cls, **kwargs) -> Charset:
        """The original's keys.txt: the 95 printable ASCII characters."""
        keys = resources.files("masterocr").joinpath("keys.txt").read_text(encoding="utf-8")
        return cls(keys, **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> Charset:
        """Read a keys file: one string, one character per symbol (a trailing newline is dropped)."""
        path = Path(path)
        require_regular_file(path, "charset file", "pass an existing keys file")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read charset file {path}: {exc.strerror}; pass an existing keys file") from exc
        try:
            keys = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UserError(f"charset file {path} is not UTF-8; re-save it as UTF-8") from exc
        keys = keys.rstrip("\r\n")
        return cls(keys, **kwargs)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.keys, encoding="utf-8")

    # sizes --------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of classes, special tokens included."""
        return len(self.keys) + NUM_SPECIAL

    def __contains__(self, ch: str) -> bool:
        return ch in self._index

    def __repr__(self) -> str:
        return f"Charset({len(self.keys)} characters, case_sensitive={self.case_sensitive})"

    # text <-> ids -------------------------------------------------------------------------------------------
    def clean(self, text: str) -> str:
        """Apply the label normalisation this charset trains with (NFKC, case folding)."""
        if self.normalize:
            text = normalize_text(text)
        if not self.case_sensitive:
            text = text.lower()
        return text

    def encode(self, text: str) -> list[int]:
        """Character ids of `text` (no SOS/EOS); unknown characters become UNK and are counted."""
        ids = []
        for ch in self.clean(text):
            idx = self._index.get(ch)
            if idx is None:
                self.unknown[ch] += 1
                idx = UNK
            ids.append(idx)
        return ids

    def decode(self, ids: Iterable[int], unk: str = "") -> str:
        """Text of a token sequence: stops at EOS, skips PAD/SOS, writes `unk` for UNK."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i == UNK:
                out.append(unk)
            elif i >= NUM_SPECIAL:
                out.append(self.keys[i - NUM_SPECIAL])
        return "".join(out)

    def encode_batch(self, texts: Sequence[str], max_len: int) -> torch.Tensor:
        """Training targets `[SOS] text [EOS] PAD...` of shape (B, max_len + 2); longer texts are cut."""
        out = torch.full((len(texts), max_len + 2), PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.encode(text)[:max_len]
            out[row, 0] = SOS
            out[row, 1 : 1 + len(ids)] = torch.tensor(ids, dtype=torch.long)
            out[row, 1 + len(ids)] = EOS
        return out

    def label_length(self, text: str) -> int:
        """Length of a label after normalisation, as the model sees it."""
        return len(self.clean(text))
