"""Text of synthetic lines: running Chinese, Latin-script and mixed text from word-frequency lists.

`LineTextSampler.sample(rng, kind)` gives one line of kind "zh" (Chinese with Latin words, numbers, dates,
prices and CJK punctuation), "latin" (English, 50%, or French, German, Spanish, Italian, Portuguese, Polish,
Czech, Dutch sentences with numbers and prices) or "mixed" (Chinese with a Latin word every few words).
Words come from wordfreq's lists (its "zh" list is already segmented into words: jieba is not needed),
weighted by frequency**0.35 as for the word crops, or from an exported prefix of them (`wordlists`).

Lengths: a target length is drawn per line from four buckets, 1-25 (35%), 26-50 (30%), 51-100 (25%) and
101-max_len (10%); words are added until the target is reached. Rare hanzi: in `UNIFORM_SHARE` (30%) of the
Chinese lines, each word is replaced with probability 0.35 by 1-3 hanzi drawn uniformly from the charset's
hanzi, so that the charset's rare characters are seen (frequency lists alone cover few of them).
Chunks (the start of a length curriculum): `sample(..., chunk=True)` gives a few words, 3-30 Latin characters
or 2-12 hanzi.
Hanzi coverage: the uniform draws are weighted per hanzi by `HANZI_LEVEL1_WEIGHT` (GB2312 level 1, about 99.7 %
of running text) or 1 (level 2), divided by 1 + the views the trainer has counted for it (`set_views`), so the
under-seen hanzi get the uniform share and the frequency-list text stays the bulk.
Spaces: none between hanzi; between a CJK and a Latin run a space in some lines, none in others, at random
in the rest (typesetters differ). Characters outside the charset are dropped and counted in `dropped`.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import Counter
from collections.abc import Callable

from masterocr.charset import Charset
from masterocr.data.synth import wordlists
from masterocr.data.synth.text import FREQ_EXPONENT, TextSampler
from masterocr.data.synth.text import word_list_reads as word_list_reads_latin

__all__ = ["KINDS", "LENGTH_BUCKETS", "LineTextSampler", "gb2312_hanzi", "is_cjk", "word_list_reads"]

KINDS = ("latin", "zh", "mixed")
LENGTH_BUCKETS = ((1, 25, 0.35), (26, 50, 0.30), (51, 100, 0.25), (101, None, 0.10))
UNIFORM_SHARE = 0.3
HANZI_LEVEL1_WEIGHT = 3.0
CHUNK_LATIN = (3, 30)
CHUNK_HANZI = (2, 12)
LATIN_LANGS = ("en", "fr", "de", "es", "it", "pt", "pl", "cs", "nl")
_LATIN_WEIGHTS = (0.5, *([0.5 / 8] * 8))
_ZH_WORDS = 60000
_ZH_PUNCT = "，，，。。、；：？！…—"
_ZH_PAIRS = (("“", "”"), ("《", "》"), ("（", "）"), ("「", "」"), ("【", "】"))
_LATIN_PUNCT = ",,,,.;:?!"


def is_cjk(ch: str) -> bool:
    """True for a CJK unified ideograph (the basic block and extension A)."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _zh_keep(keys: str) -> Callable[[str], bool]:
    """The Chinese words a charset can spell: hanzi only, each in the charset."""
    allowed = frozenset(keys)
    return lambda word: all(is_cjk(c) and c in allowed for c in word)


def word_list_reads(charset: Charset) -> dict[str, list[tuple[int, Callable[[str], bool]]]]:
    """What `LineTextSampler` reads of each frequency list for `charset` (`wordlists.export_wordlists`)."""
    reads = word_list_reads_latin(LATIN_LANGS)
    if any(is_cjk(c) for c in charset.keys):
        reads["zh"] = [(_ZH_WORDS, _zh_keep(charset.keys))]
    return reads


@functools.lru_cache(maxsize=4)
def _zh_words(keys: str, src: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Chinese words of the frequency list whose characters the charset has, with cumulative weights."""
    top = wordlists.top_words("zh", _ZH_WORDS, _zh_keep(keys), src)
    weights = [10.0 ** (-i / 100.0 * FREQ_EXPONENT) for i in top.bins]
    return top.words, tuple(itertools.accumulate(weights))


class LineTextSampler:
    """Draws line texts for a charset; deterministic for a `random.Random` state."""

    def __init__(self, charset: Charset, max_len: int = 160) -> None:
        self.charset = charset
        self.max_len = max_len
        self.allowed = frozenset(charset.keys)
        self.words = TextSampler(charset, max_len=25, languages=LATIN_LANGS)
        self.hanzi = "".join(c for c in charset.keys if is_cjk(c))
        self.set_views({})
        self.zh = _zh_words(charset.keys, wordlists.source()) if self.hanzi else ((), ())
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

    def set_views(self, views: dict[str, int]) -> None:
        """Weight the uniform hanzi draws by level / (1 + views so far) (`views`: hanzi -> count)."""
        level1 = _gb2312_level1()
        weights = [(HANZI_LEVEL1_WEIGHT if c in level1 else 1.0) / (1 + views.get(c, 0)) for c in self.hanzi]
        self.hanzi_cum = tuple(itertools.accumulate(weights))

    def draw_hanzi(self, rng: random.Random, k: int) -> str:
        """`k` hanzi of the uniform draws: by level, the under-seen first (`set_views`)."""
        return "".join(rng.choices(self.hanzi, cum_weights=self.hanzi_cum, k=k))

    def chunk_length(self, rng: random.Random, kind: str) -> int:
        """A chunk's target length: a few words of Latin, a short run of hanzi."""
        lo, hi = CHUNK_LATIN if kind == "latin" or not self.zh[0] else CHUNK_HANZI
        return rng.randint(lo, min(hi, self.max_len))

    def sample(self, rng: random.Random, kind: str, chunk: bool = False) -> str:
        """One line of `kind` ("latin", "zh" or "mixed"): charset characters only, no outer or double spaces;
        a short chunk of one with `chunk`."""
        target = self.chunk_length(rng, kind) if chunk else self.target_length(rng)
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
            return self.draw_hanzi(rng, rng.randint(1, 3))
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
def _gb2312_level1() -> frozenset[str]:
    """GB2312's 3,755 level-1 hanzi (rows 16-55), the common ones."""
    return frozenset(gb2312_hanzi()[:3755])


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
