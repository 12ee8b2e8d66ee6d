"""Text sampling for synthetic word images: real words by frequency plus synthetic strings over the charset.

About 65% of labels are real words from `wordfreq` frequency lists (English ~60% of those), sampled with
weights frequency**0.35 (a tempered Zipf distribution: common words come often, but "the" is not 5% of all
labels as in running text) and randomly cased (lower / Title / UPPER / rarely mixed). The other ~35% are
synthetic: numbers, prices, dates, times, product codes, e-mail and URL fragments, words with punctuation
attached, 1-2 character strings, long compounds and random strings over the whole charset, so that every
character (rare punctuation included) is trained. Every label is `charset.clean`-ed, only uses charset
characters, has 1..max_len characters and never starts or ends with a space.
"""

from __future__ import annotations

import functools
import itertools
import random
import string
from collections.abc import Callable, Sequence

from masterocr.charset import Charset
from masterocr.data.synth import wordlists
from masterocr.errors import UserError

DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl")
ENGLISH_SHARE = 0.6
WORD_SHARE = 0.65
FREQ_EXPONENT = 0.35
_WORDS_PER_LANG = {"en": 50000}
_DEFAULT_WORDS_PER_LANG = 25000

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TLDS = ("com", "org", "net", "de", "fr", "io", "co.uk", "edu", "info", "es", "it", "nl")
_UNITS = ("kg", "g", "km", "m", "cm", "mm", "ml", "L", "h", "min", "mph", "km/h", "V", "W", "GB", "MB", "%")
_CURRENCIES = ("$", "€", "£", "¥", "USD", "EUR")
_WRAPS = (('"', '"'), ("'", "'"), ("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"), ("*", "*"), ("_", "_"))
_TRAIL = ",.;:!?"


def is_word(word: str) -> bool:
    """A dictionary word for the samplers: letters and inner apostrophes only."""
    return word.replace("'", "").isalpha() and not word.startswith("'") and not word.endswith("'")


def word_list_reads(languages: Sequence[str] = DEFAULT_LANGUAGES) -> dict[str, list[tuple[int, Callable]]]:
    """What `TextSampler` reads of each language's frequency list: {lang: [(words wanted, word filter)]}."""
    return {lang: [(_WORDS_PER_LANG.get(lang, _DEFAULT_WORDS_PER_LANG), is_word)] for lang in languages}


@functools.lru_cache(maxsize=16)
def _word_list(lang: str, n: int, src: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(words, cumulative weights) of a language's `n` most frequent words, letters and apostrophes only."""
    top = wordlists.top_words(lang, n, is_word, src)
    weights = [10.0 ** (-i / 100.0 * FREQ_EXPONENT) for i in top.bins[:n]]  # tempered bin frequency
    return top.words[:n], tuple(itertools.accumulate(weights))


@functools.lru_cache(maxsize=64)
def _charset_words(
    lang: str, keys: str, case_sensitive: bool, normalize: bool, src: str
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The language's word list restricted to words a charset can spell (in some casing), with weights."""
    charset = Charset(keys, case_sensitive=case_sensitive, normalize=normalize)
    allowed = frozenset(keys)

    def fits(text: str) -> bool:
        return all(ch in allowed or ch.upper() in allowed for ch in charset.clean(text))

    words, cum = _word_list(lang, _WORDS_PER_LANG.get(lang, _DEFAULT_WORDS_PER_LANG), src)
    keep = [i for i, w in enumerate(words) if fits(w)]
    weights = [cum[i] - (cum[i - 1] if i else 0.0) for i in keep]
    return tuple(words[i] for i in keep), tuple(itertools.accumulate(weights))


class TextSampler:
    """Draws word-image labels for a charset; `sample(rng)` is deterministic for a `random.Random` state."""

    def __init__(
        self,
        charset: Charset,
        seed: int = 0,
        max_len: int = 25,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
    ) -> None:
        if max_len < 1:
            raise UserError(f"max_len must be >= 1, got {max_len}")
        self.charset = charset
        self.max_len = max_len
        self.rng = random.Random(seed)
        self.keys = charset.clean(charset.keys)
        self.allowed = frozenset(charset.keys)
        self.visible = "".join(ch for ch in charset.keys if not ch.isspace())
        if not self.visible:
            raise UserError("the charset has no visible character to render")
        self.languages = tuple(languages)
        # symbols outside the charset would be dropped from the label: choose among those it has
        self.currencies = [c for c in _CURRENCIES if set(c) <= self.allowed] or ["USD"]
        self.prefixes = [c for c in "¿¡-&+=%" if c in self.allowed] or ["-"]
        self.lang_weights = tuple(
            (ENGLISH_SHARE if lang == "en" else (1 - ENGLISH_SHARE) / max(1, len(languages) - 1))
            for lang in self.languages
        )
        self.words: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {}
        src = wordlists.source()
        for lang in self.languages:
            words = _charset_words(lang, charset.keys, charset.case_sensitive, charset.normalize, src)
            if words[0]:
                self.words[lang] = words
        self.lang_weights = tuple(
            w for lang, w in zip(self.languages, self.lang_weights, strict=True) if lang in self.words
        )
        self.languages = tuple(lang for lang in self.languages if lang in self.words)
        self._gens = (
            (self._number, 5.0),
            (self._price, 3.0),
            (self._date, 2.5),
            (self._time, 2.0),
            (self._code, 4.0),
            (self._web, 2.5),
            (self._punct_word, 6.5),
            (self._random_chars, 5.0),
            (self._short, 3.0),
            (self._long, 2.0),
        )
        self._gen_cum = tuple(itertools.accumulate(w for _, w in self._gens))

    # public -------------------------------------------------------------------------------------------------
    def sample(self, rng: random.Random | None = None) -> str:
        """One label: non-empty, at most max_len characters, charset characters only, no outer spaces."""
        rng = rng or self.rng
        for _ in range(20):
            if self.languages and rng.random() < WORD_SHARE:
                text = self._cased(self.word(rng), rng)
            else:
                gen = rng.choices(self._gens, cum_weights=self._gen_cum)[0][0]
                text = gen(rng)
            text = self._finish(text)
            if text:
                return text
        return self._finish(rng.choice(self.visible)) or self.visible[0]

    def word(self, rng: random.Random) -> str:
        """A lower-case dictionary word (frequency-weighted), or random letters when no word list fits."""
        if not self.languages:
            return "".join(rng.choices(self.visible, k=rng.randint(2, 8)))
        lang = rng.choices(self.languages, weights=self.lang_weights)[0]
        words, cum = self.words[lang]
        return rng.choices(words, cum_weights=cum)[0]

    # helpers ------------------------------------------------------------------------------------------------
    def _finish(self, text: str) -> str:
        text = self.charset.clean(text)
        allowed = self.allowed
        if any(ch not in allowed for ch in text):  # change case where only the other case is in the charset
            text = "".join(ch if ch in allowed else ch.upper() if ch.upper() in allowed else ch.lower() for ch in text)
            text = "".join(ch for ch in text if ch in allowed)
        while "  " in text:
            text = text.replace("  ", " ")
        text = text[: self.max_len].strip()
        return text

    def _cased(self, word: str, rng: random.Random) -> str:
        """lower (50%), Title (30%), UPPER (17%) or rAnDoM case; a case the charset cannot spell is skipped."""
        r = rng.random()
        if r < 0.5:
            return word
        if r < 0.8:
            out = word[:1].upper() + word[1:]
        elif r < 0.97:
            out = word.upper()
        else:
            out = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in word)
        return out if all(ch in self.allowed for ch in out) else word

    def _digits(self, rng: random.Random, lo: int, hi: int) -> str:
        return "".join(rng.choices(string.digits, k=rng.randint(lo, hi)))

    def _number(self, rng: random.Random) -> str:
        r = rng.random()
        n = rng.choice((rng.randint(0, 99), rng.randint(0, 9999), rng.randint(0, 10**7)))
        if r < 0.35:
            return str(n)
        if r < 0.5:
            return f"{n:,}" if rng.random() < 0.7 else f"{n:,}".replace(",", ".")
        if r < 0.65:
            return f"{rng.uniform(0, 1000):.{rng.randint(1, 3)}f}"
        if r < 0.75:
            return f"{rng.choice(['-', '+', '#', '~', 'No.', 'x'])}{n}"
        if r < 0.85:
            k = n % 100
            suf = "th" if 10 <= k <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
            return f"{k}{suf}"
        return f"{rng.randint(0, 999)}{rng.choice(['', ' '])}{rng.choice(_UNITS)}"

    def _price(self, rng: random.Random) -> str:
        cur = rng.choice(self.currencies)
        amount = f"{rng.randint(0, 999)}" + (f".{rng.randint(0, 99):02d}" if rng.random() < 0.7 else "")
        if rng.random() < 0.2:
            amount = amount.replace(".", ",")
        if rng.random() < 0.65:
            return f"{cur}{amount}"
        return f"{amount}{rng.choice(['', ' '])}{cur}"

    def _date(self, rng: random.Random) -> str:
        d, m, y = rng.randint(1, 31), rng.randint(1, 12), rng.randint(1950, 2035)
        return rng.choice(
            (
                f"{d:02d}/{m:02d}/{y}",
                f"{m}/{d}/{y % 100:02d}",
                f"{y}-{m:02d}-{d:02d}",
                f"{d:02d}.{m:02d}.{y}",
                f"{d}.{m}.{y % 100:02d}",
                f"{rng.choice(_MONTHS)} {d}",
                f"{d}-{rng.choice(_MONTHS).upper()}-{y}",
                str(y),
            )
        )

    def _time(self, rng: random.Random) -> str:
        h, m, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        return rng.choice(
            (
                f"{h}:{m:02d}",
                f"{h:02d}:{m:02d}:{s:02d}",
                f"{h % 12 or 12}:{m:02d}{rng.choice(['am', 'pm', 'AM'])}",
            )
        )

    def _code(self, rng: random.Random) -> str:
        up, alnum = string.ascii_uppercase, string.ascii_letters + string.digits
        r = rng.random()
        if r < 0.3:
            letters = "".join(rng.choices(up, k=rng.randint(1, 3)))
            return f"{letters}{rng.choice('-_/ ')}{self._digits(rng, 2, 5)}"
        if r < 0.55:
            return "".join(rng.choices(alnum, k=rng.randint(3, 9)))
        if r < 0.7:
            return "".join(rng.choice(up) + rng.choice(string.digits) for _ in range(rng.randint(2, 4)))
        if r < 0.85:
            return f"{self._digits(rng, 2, 4)}{rng.choice('-/.')}{self._digits(rng, 2, 6)}"
        return f"{rng.choice(['#', '@', '&', '*', '+'])}{''.join(rng.choices(alnum, k=rng.randint(2, 6)))}"

    def _web(self, rng: random.Random) -> str:
        a, b = self.word(rng), self.word(rng)
        tld = rng.choice(_TLDS)
        return rng.choice(
            (
                f"{a}@{b}.{tld}",
                f"{a}.{b}@{rng.choice(['gmail', 'mail', 'web'])}.{tld}",
                f"www.{a}.{tld}",
                f"{a}{b}.{tld}",
                f"http://{a}.{tld}",
                f"https://{a}",
                f"/{a}/{b}",
                f"{a}_{b}",
                f"~{a}",
                f"@{a}{rng.randint(0, 99)}",
                f"#{a}",
                f"{a}={rng.randint(0, 99)}",
                f"{a}\\{b}",
                f"{a}|{b}",
                f"{a}^{rng.randint(2, 9)}",
                f"`{a}`",
            )
        )

    def _punct_word(self, rng: random.Random) -> str:
        w = self._cased(self.word(rng), rng)
        r = rng.random()
        if r < 0.4:
            return w + rng.choice(_TRAIL) if rng.random() < 0.85 else w + rng.choice(("...", "!!", "?!", ":)", ")."))
        if r < 0.7:
            left, right = rng.choice(_WRAPS)
            return f"{left}{w}{right}" + (rng.choice(_TRAIL) if rng.random() < 0.2 else "")
        if r < 0.85:
            return f"{w}{rng.choice('-/&+')}{self._cased(self.word(rng), rng)}"
        return f"{rng.choice(self.prefixes)}{w}"

    def _random_chars(self, rng: random.Random) -> str:
        n = min(self.max_len, rng.choice((1, 2, 3, rng.randint(3, 8), rng.randint(4, 14))))
        return "".join(rng.choices(self.keys, k=n)).strip() or rng.choice(self.visible)

    def _short(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.35:
            return rng.choice(string.ascii_letters) + (rng.choice(string.ascii_letters) if rng.random() < 0.4 else "")
        if r < 0.6:
            return self._digits(rng, 1, 2)
        if r < 0.8:
            return rng.choice(self.visible)
        return rng.choice(self.visible) + rng.choice(self.visible)

    def _long(self, rng: random.Random) -> str:
        parts = [self._cased(self.word(rng), rng)]
        sep = rng.choice(("", "-", " ", "", "_", "/"))
        target = rng.randint(min(10, self.max_len), self.max_len)
        for _ in range(8):
            nxt = self.word(rng) if sep == "" else self._cased(self.word(rng), rng)
            if len(sep.join([*parts, nxt])) > target:
                break
            parts.append(nxt)
        return sep.join(parts)
