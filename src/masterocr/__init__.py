"""masterocr: MASTER scene-text recognition. Public API: build_model, Recognizer, load_recognizer, Charset,
load_config; whole pages: read_page, PageReader (the page extra)."""

from masterocr.charset import Charset
from masterocr.errors import UserError
from masterocr.model import MASTER, MasterConfig, build_model
from masterocr.page import PageReader, read_page
from masterocr.runtime.base import Prediction
from masterocr.runtime.select import load_recognizer
from masterocr.runtime.torch import Recognizer
from masterocr.train.config import load_config

__version__ = "0.1.0"
__all__ = [
    "MASTER",
    "Charset",
    "MasterConfig",
    "PageReader",
    "Prediction",
    "Recognizer",
    "UserError",
    "build_model",
    "load_config",
    "load_recognizer",
    "read_page",
]
