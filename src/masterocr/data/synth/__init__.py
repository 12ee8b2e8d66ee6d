"""Synthetic word images: render labelled word crops that look like real scene or document text.

One module per job, in the order a sample is made:
- `text`: the labels (`TextSampler`: frequency-weighted words in several languages plus numbers, dates, codes);
  `fonts`: font discovery and the usability check; `families`: the train/held-out split by design family.
- `choices` (font size and style), `glyphs` (cached glyph bitmaps and layout), `masks` (fill, outline and
  neighbour masks), `warp` (rotation, shear, perspective and bend), `colour`, `background`, `paint`
  (compositing) and `degrade` (camera effects); `render.render_word` runs them as named steps. Text is drawn
  at its final pixel size, and all randomness comes from the caller's rng, so a seed gives the same bytes.
- `synthesizer.Synthesizer`: a label, a font that draws it (family first, then a face), a rendering.
- `dataset.SynthDataset`: on-the-fly training data, deterministic per (seed, epoch, index).
- `pools.generate`: a clovaai LMDB or an image folder, in parallel, deterministic for a seed whatever the
  number of workers; `sheet.render_grid`: a contact sheet of samples and labels (docs/synth_samples.png).

Text lines (docs/synth_lines.md): `linetext` (Chinese, Latin and mixed line texts), `cjkfonts` (the CJK
faces by design, LXGW WenKai held out, per-glyph coverage), `linesynth` (`render_line`, `LineSynthesizer`)
and `linedataset` (`SynthLineDataset`, `line_evaluation_set`, `generate_lines` into LMDB shards).
"""

from masterocr.data.synth.dataset import SynthDataset
from masterocr.data.synth.linedataset import SynthLineDataset, generate_lines, line_evaluation_set
from masterocr.data.synth.linesynth import LineSynthesizer, render_line
from masterocr.data.synth.pools import encode_image, generate
from masterocr.data.synth.render import render_word
from masterocr.data.synth.sheet import render_grid
from masterocr.data.synth.synthesizer import Synthesizer
from masterocr.data.synth.text import TextSampler

__all__ = [
    "LineSynthesizer",
    "Synthesizer",
    "SynthDataset",
    "SynthLineDataset",
    "TextSampler",
    "encode_image",
    "generate",
    "generate_lines",
    "line_evaluation_set",
    "render_grid",
    "render_line",
    "render_word",
]
