"""Text of synthetic lines: running Chinese, Latin-script and mixed text from word-frequency lists.

`LineTextSampler.sample(rng, kind)` gives one line of kind "zh" (Chinese with Latin words, numbers, dates,
prices and CJK punctuation), "latin" (English, 50%, or French, German, Spanish, Italian, Portuguese, Polish,
Czech, Dutch sentences with numbers and prices) or "mixed" (Chinese with a Latin word every few words).
Words come from wordfreq's lists (its "zh" list is already segmented into words: jieba is not needed),
weighted by frequency**0.35 as for the word crops.

Lengths: a target length is drawn per line from four buckets, 1-25 (35%), 26-50 (30%), 51-100 (25%) and
101-max_len (10%); words are added until the target is reached. Rare hanzi: in `UNIFORM_SHARE` (30%) of the
Chinese lines, each word is replaced with probability 0.35 by 1-3 hanzi drawn uniformly from the charset's
hanzi, so that the charset's rare characters are seen (frequency lists alone cover few of them).
Spaces: none between hanzi; between a CJK and a Latin run a space in some lines, none in others, at random
in the rest (typesetters differ). Characters outside the charset are dropped and counted in `dropped`.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import Counter

from masterocr.charset import Charset
from masterocr.data.synth.text import FREQ_EXPONENT, TextSampler
from masterocr.imports import require

__all__ = ["KINDS", "LENGTH_BUCKETS", "LineTextSampler", "gb2312_hanzi", "is_cjk"]

KINDS = ("latin", "zh", "mixed")
LENGTH_BUCKETS = ((1, 25, 0.35), (26, 50, 0.30), (51, 100, 0.25), (101, None, 0.10))
UNIFORM_SHARE = 0.3
LATIN_LANGS = ("en", "fr", "de", "es", "it", "pt", "pl", "cs", "nl")
_LATIN_WEIGHTS = (0.5, *([0.5 / 8] * 8))
_ZH_WORDS = 60000
_ZH_PUNCT = "，，，。。、；：？！…—"
_ZH_PAIRS = (("“", "”"), ("《", "》"), ("（", "）"), ("「", "」"), ("【", "】"))
_LATIN_PUNCT = ",,,,.;:?!"


def is_cjk(ch: str) -> bool:
    """True for a CJK unified ideograph (the basic block and extension A)."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


@functools.lru_cache(maxsize=4)
def _zh_words(keys: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Chinese words of wordfreq's list whose characters the charset has, with cumulative weights."""
    wordfreq = require("wordfreq", "synthetic lines (masterocr synth --lines)")

    allowed = frozenset(keys)
    words: list[str] = []
    weights: list[float] = []
    for centibel, bucket in enumerate(wordfreq.get_frequency_list("zh")):
        w = 10.0 ** (-centibel / 100.0 * FREQ_EXPONENT)
        for word in bucket:
            if all(is_cjk(c) and c in allowed for c in word):
                words.append(word)
                weights.append(w)
        if len(words) >= _ZH_WORDS:
            break
    return tuple(words), tuple(itertools.accumulate(weights))


class LineTextSampler:
    """Draws line texts for a charset; deterministic for a `random.Random` state."""

    def __init__(self, charset: Charset, max_len: int = 160) -> None:
        self.charset = charset
        self.max_len = max_len
        self.allowed = frozenset(charset.keys)
        self.words = TextSampler(charset, max_len=25, languages=LATIN_LANGS)
        self.hanzi = "".join(c for c in charset.keys if is_cjk(c))
        self.zh = _zh_words(charset.keys) if self.hanzi else ((), ())
        self.zh_punct = "".join(c for c in _ZH_PUNCT if c in self.allowed or charset.clean(c) in self.allowed)
        self.dropped: Counter[str] = Counter()

    def target_length(self, rng: random.Random) -> int:
        """A target length in characters, from the four length buckets."""
        r = rng.random()
        for lo, hi, share in LENGTH_BUCKETS:
            if r < share or hi is None:
                return rng.randint(min(lo, self.max_len), min(hi or self.max_len, self.max_len))
            r -= share
        return self.max_len

    def sample(self, rng: random.Random, kind: str) -> str:
        """One line of `kind` ("latin", "zh" or "mixed"): charset characters only, no outer or double spaces."""
        target = self.target_length(rng)
        if kind == "latin" or not self.zh[0]:
            text = self._latin(rng, target)
        else:
            text = self._zh(rng, target, latin_every=4 if kind == "mixed" else 14)
        return self._finish(text)

    def _finish(self, text: str) -> str:
        kept = []
        for ch in text:  # the renderer draws `text`; the label is charset.clean(text)
            if ch in self.allowed or ch.isspace() or self._folds_in(ch):
                kept.append(ch)
            else:
                self.dropped[ch] += 1
        out = " ".join("".join(kept).split())
        return out[: self.max_len].rstrip() or (self.hanzi[:1] or "a")

    def _folds_in(self, ch: str) -> bool:
        """True when NFKC folds `ch` into charset characters (full-width "，" into ",")."""
        folded = self.charset.clean(ch)
        return bool(folded) and set(folded) <= self.allowed

    def _token(self, rng: random.Random) -> str:
        """A number, price, date or time (the word sampler's generators)."""
        gen = rng.choice((self.words._number, self.words._price, self.words._date, self.words._time))
        return gen(rng)

    def _latin(self, rng: random.Random, target: int) -> str:
        lang = rng.choices(LATIN_LANGS, weights=_LATIN_WEIGHTS)[0]
        if lang not in self.words.words:
            lang = self.words.languages[0] if self.words.languages else None
        parts: list[str] = []
        n = 0
        capital = True
        while n < target:
            if rng.random() < 0.08:
                w = self._token(rng)
            elif lang is None:
                w = self.words.word(rng)
            else:
                words, cum = self.words.words[lang]
                w = rng.choices(words, cum_weights=cum)[0]
            if capital or rng.random() < 0.06:
                w = w[:1].upper() + w[1:]
            capital = False
            r = rng.random()
            if r < 0.07:
                w += rng.choice(_LATIN_PUNCT)
                capital = w[-1] in ".?!"
            elif r < 0.09:
                w = rng.choice(("(", '"')) + w + rng.choice((")", '"'))
            parts.append(w)
            n += len(w) + 1
        text = " ".join(parts)
        if target > 20 and text[-1].isalnum() and rng.random() < 0.6:
            text += rng.choice(".!?:")
        return text

    def _zh_word(self, rng: random.Random, uniform: bool) -> str:
        if uniform and rng.random() < 0.35:
            return "".join(rng.choices(self.hanzi, k=rng.randint(1, 3)))
        words, cum = self.zh
        return rng.choices(words, cum_weights=cum)[0]

    def _zh(self, rng: random.Random, target: int, latin_every: int) -> str:
        uniform = rng.random() < UNIFORM_SHARE
        gap_mode = rng.random()  # < 0.4 always a space at CJK/Latin borders, < 0.8 never, else at random
        out = ""
        opened = ""
        while len(out) < target:
            r = rng.random()
            if r < 1.0 / latin_every:
                w = self._token(rng) if rng.random() < 0.5 else self.words._cased(self.words.word(rng), rng)
                gap = gap_mode < 0.4 or (gap_mode >= 0.8 and rng.random() < 0.5)
                out += (" " if gap and out else "") + w + (" " if gap else "")
                continue
            w = self._zh_word(rng, uniform)
            r = rng.random()
            if r < 0.12 and self.zh_punct:
                w += rng.choice(self.zh_punct)
            elif r < 0.15 and not opened:
                left, opened = rng.choice(_ZH_PAIRS)
                w = left + w
            elif r < 0.25 and opened:
                w, opened = w + opened, ""
            out += w
        return out.rstrip() + (opened if opened and len(out) < self.max_len else "")


@functools.lru_cache(maxsize=1)
def gb2312_hanzi() -> str:
    """The 6,763 hanzi of GB2312 (rows 16-87), in code order, from Python's gb2312 codec."""
    out = []
    for hi in range(0xB0, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(out)
