"""Vocabulary: special tokens, encode/decode, out-of-vocabulary counting.

Index layout follows the original's label converter (the model file had SOS and EOS swapped, a defect):
PAD=0, EOS=1, SOS=2, UNK=3, characters from 4.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import torch

from masterocr.errors import UserError
from masterocr.files import read_text
from masterocr.text import normalize_text

log = logging.getLogger(__name__)

PAD, EOS, SOS, UNK = 0, 1, 2, 3
NUM_SPECIAL = 4
MAX_KEYS = 100_000  # distinct characters of a charset (GB18030's 70,000+ hanzi fit); MAX_CLASSES adds the specials
MAX_KEYS_BYTES = 4 * MAX_KEYS  # UTF-8 takes at most 4 bytes a character
SHIPPED = ("zh_latin",)  # charsets under masterocr/charsets/, by name


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
        if len(seen) > MAX_KEYS:
            raise UserError(f"the charset has {len(seen):,} distinct characters, over the limit of {MAX_KEYS:,}; "
                            "keep the characters your labels use")
        self.keys = "".join(seen)
        self.case_sensitive = case_sensitive
        self.normalize = normalize
        self._index = {ch: i + NUM_SPECIAL for i, ch in enumerate(self.keys)}
        # what each key prints as: its NFKC form, so that a user's keys file holding full-width forms still
        # reads and predicts the text its (folded) labels have
        self._out = [normalize_text(ch) for ch in self.keys] if normalize else list(self.keys)
        for i, out in enumerate(self._out):  # and a folded label character finds that key
            if len(out) == 1:
                self._index.setdefault(out, i + NUM_SPECIAL)
        if normalize:
            _warn_folded_twins(self.keys, self._out)
        self.unknown: Counter[str] = Counter()

    # construction -------------------------------------------------------------------------------------------
    @classmethod
    def default(cls, **kwargs) -> Charset:
        """The original's keys.txt: the 95 printable ASCII characters."""
        keys = resources.files("masterocr").joinpath("keys.txt").read_text(encoding="utf-8")
        return cls(keys, **kwargs)

    @classmethod
    def shipped(cls, name: str, **kwargs) -> Charset:
        """A charset that ships with masterocr: "zh_latin" (GB2312's 6,763 hanzi, ASCII, Latin-1 Supplement,
        Latin Extended-A, CJK and general punctuation; scripts/make_charset_zh.py writes it)."""
        if name not in SHIPPED:
            raise UserError(f"unknown shipped charset {name!r}; choose one of {', '.join(SHIPPED)} or give a keys file")
        keys = resources.files("masterocr").joinpath("charsets", f"{name}.txt").read_text(encoding="utf-8")
        return cls(keys.rstrip("\r\n"), **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> Charset:
        """Read a keys file: one string, one character per symbol (a trailing newline is dropped)."""
        keys = read_text(path, "charset file", "pass a keys file: a UTF-8 text of the characters, each once",
                         MAX_KEYS_BYTES)
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
                out.append(self._out[i - NUM_SPECIAL])
        return "".join(out)

    def symbol(self, index: int) -> str:
        """The text class `index` (>= NUM_SPECIAL) predicts: its key, NFKC-folded when the charset normalises."""
        return self._out[index - NUM_SPECIAL]

    def count_oov(self, labels: Iterable[str]) -> Counter[str]:
        """Out-of-vocabulary characters of `labels` after cleaning (character -> occurrences), without
        touching `unknown`: what a dataset reports when it is built."""
        oov: Counter[str] = Counter()
        for label in labels:
            oov.update(ch for ch in self.clean(label) if ch not in self._index)
        return oov

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


def oov_summary(oov: Counter[str], source: str, top: int = 10) -> str | None:
    """One line naming a dataset's out-of-vocabulary characters (most frequent first); None when there are
    none."""
    if not oov:
        return None
    shown = ", ".join(f"{ch!r} x{n}" for ch, n in oov.most_common(top))
    more = f" and {len(oov) - top} more" if len(oov) > top else ""
    return (
        f"{source}: {sum(oov.values())} label characters in {len(oov)} kinds are not in the charset "
        f"(read as UNK): {shown}{more}; add them to the keys file or drop those samples"
    )


def _warn_folded_twins(keys: str, folded: list[str]) -> None:
    """One line when keys fold to the same text under NFKC (e.g. "Ａ" and "A"): labels are folded first, so
    only the first of them is ever a target and the others' classes are never trained."""
    first: dict[str, str] = {}
    twins = []
    for key, out in zip(keys, folded):
        if out in first:
            twins.append(f"{key!r} ~ {first[out]!r}")
        else:
            first[out] = key
    if twins:
        log.warning(
            "%d charset keys fold under NFKC to the text of an earlier key (%s%s): labels are folded, so their "
            "classes are never trained; drop them from the keys file, or build the charset with normalize=False",
            len(twins), ", ".join(twins[:5]), ", ..." if len(twins) > 5 else "",
        )
