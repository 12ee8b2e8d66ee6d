"""masterocr: MASTER scene-text recognition. Public API: build_model, Recognizer, load_recognizer, Charset,
load_config; whole pages: read_page, PageReader (the page extra).

The names load on first use (PEP 562): `import masterocr` alone reads no torch, training or LMDB code, so a
tool that only wants `masterocr.__version__` or the CLI's `--version` starts at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from masterocr.imports import lazy_exports
from masterocr.version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "Charset": "masterocr.charset",
    "UserError": "masterocr.errors",
    "MASTER": "masterocr.model",
    "MasterConfig": "masterocr.model",
    "build_model": "masterocr.model",
    "Prediction": "masterocr.runtime.base",
    "load_recognizer": "masterocr.runtime.select",
    "Recognizer": "masterocr.runtime.torch",
    "load_config": "masterocr.train.config",
    "read_page": "masterocr.page",
    "PageReader": "masterocr.page",
}
__all__ = [
    "__version__",
    "build_model",
    "Charset",
    "load_config",
    "load_recognizer",
    "MASTER",
    "MasterConfig",
    "PageReader",
    "PageReader",
    "Prediction",
    "read_page",
    "Recognizer",
    "UserError",
]

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from masterocr.charset import Charset
    from masterocr.errors import UserError
    from masterocr.model import MASTER, MasterConfig, build_model
    from masterocr.page import PageReader, read_page
    from masterocr.runtime.base import Prediction
    from masterocr.runtime.select import load_recognizer
    from masterocr.runtime.torch import Recognizer
    from masterocr.train.config import load_config


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
