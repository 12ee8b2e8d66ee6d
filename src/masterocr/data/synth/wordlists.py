"""Word-frequency lists for the synthetic text samplers: wordfreq's, or an exported prefix of them.

A language's list is a sequence of bins: bin i holds the words of frequency about 10**(-i/100), most frequent
first (wordfreq's `get_frequency_list`). The samplers read a list only up to the bin in which they have
enough words (`top_words`), so the part they use is a small prefix of wordfreq's ~58 MB of data.
`export_wordlists` writes those prefixes into one gzipped JSON file (about a megabyte or two); a machine
without wordfreq (a lent GPU that reaches no package registry) reads it through `$MASTEROCR_WORDLISTS`, and
the samplers draw the same words from it for the same seed. When that variable is set, its file wins over an
installed wordfreq, so a run says which source it used.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from masterocr.errors import UserError

__all__ = ["WORDLISTS_ENV", "TopWords", "export_wordlists", "source", "top_words"]

WORDLISTS_ENV = "MASTEROCR_WORDLISTS"
_FORMAT = "masterocr-wordlists-1"


def source() -> str:
    """Where the word lists come from: the file named by $MASTEROCR_WORDLISTS, else "wordfreq"."""
    return os.environ.get(WORDLISTS_ENV) or "wordfreq"


@dataclass(frozen=True)
class TopWords:
    """The words a sampler keeps of one list, in frequency order, each with its bin; `bins_read` bins read."""

    words: tuple[str, ...]
    bins: tuple[int, ...]
    bins_read: int


def _wordfreq_bins(lang: str) -> Sequence[Sequence[str]]:
    try:
        import wordfreq
    except ImportError as exc:
        raise UserError(
            "synthetic text needs the 'wordfreq' package (pip install 'masterocr[synth]') or an exported word "
            f"list file named by ${WORDLISTS_ENV} (scripts/gpu_pack.py build writes one)"
        ) from exc
    try:
        return wordfreq.get_frequency_list(lang)
    except LookupError as exc:
        raise UserError(f"wordfreq has no word list for language {lang!r}; pick e.g. en, de, fr, es") from exc


def _release_wordfreq_cache() -> None:
    """wordfreq caches each language's whole list (~30 MB each); the samplers keep only their top words."""
    try:
        import wordfreq
    except ImportError:
        return
    clear = getattr(wordfreq.get_frequency_list, "cache_clear", None)
    if clear is not None:
        clear()


@functools.lru_cache(maxsize=2)
def _load_file(path: str) -> dict:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path} (${WORDLISTS_ENV}) is not a readable word list file: {exc}; rebuild it with "
                        "scripts/gpu_pack.py build, or unset the variable to use wordfreq") from exc
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise UserError(f"{path} (${WORDLISTS_ENV}): field 'format' is not {_FORMAT!r}; rebuild the file with "
                        "scripts/gpu_pack.py build")
    return data


def _file_bins(path: str, lang: str) -> Iterator[tuple[int, Sequence[str]]]:
    entry = _load_file(path)["langs"].get(lang)
    if entry is None:
        raise UserError(f"{path} (${WORDLISTS_ENV}) has no word list for language {lang!r}; rebuild it with "
                        "scripts/gpu_pack.py build for the languages the config uses")
    yield from enumerate(entry["bins"])
    if not entry["complete"]:  # the reader wants more than was exported: its words would differ from wordfreq's
        raise UserError(f"{path} (${WORDLISTS_ENV}) holds the first {len(entry['bins'])} bins of {lang!r}, fewer "
                        "than this charset needs; rebuild it with scripts/gpu_pack.py build for this charset")


def _bins(lang: str, src: str) -> Iterator[tuple[int, Sequence[str]]]:
    if src == "wordfreq":
        yield from enumerate(_wordfreq_bins(lang))
    else:
        yield from _file_bins(src, lang)


def top_words(lang: str, limit: int, keep: Callable[[str], bool], src: str | None = None) -> TopWords:
    """The words of `lang`'s list that `keep` accepts, read bin by bin until the bin in which `limit` words
    are reached (that bin is read whole); from `src` (default: `source()`)."""
    words: list[str] = []
    bins: list[int] = []
    read = 0
    for i, bucket in _bins(lang, src or source()):
        read = i + 1
        for word in bucket:
            if keep(word):
                words.append(word)
                bins.append(i)
        if len(words) >= limit:
            break
    _release_wordfreq_cache()
    return TopWords(tuple(words), tuple(bins), read)


def export_wordlists(path: str | Path, reads: Mapping[str, Sequence[tuple[int, Callable[[str], bool]]]]) -> dict:
    """Write the prefix of each language's wordfreq list that `reads` ({lang: [(limit, keep), ...]}, what the
    samplers read for a charset) needs into a gzipped JSON file; returns {lang: words exported}."""
    langs = {}
    counts = {}
    for lang, needs in sorted(reads.items()):
        depth = max(top_words(lang, limit, keep, "wordfreq").bins_read for limit, keep in needs)
        all_bins = _wordfreq_bins(lang)
        langs[lang] = {"bins": [list(bucket) for bucket in all_bins[:depth]], "complete": depth >= len(all_bins)}
        counts[lang] = sum(len(bucket) for bucket in all_bins[:depth])
        _release_wordfreq_cache()
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump({"format": _FORMAT, "langs": langs}, f, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, out)
    return counts
