"""Whole pages: a kept pretrained text detector (PaddleOCR's DB, run through onnxruntime), line crops, reading
order and PDF pages over the recognizers of runtime/. Needs the page extra: pip install 'masterocr[page]'."""

from masterocr.page.reader import PageLine, PageReader, PageResult, read_page

__all__ = ["PageLine", "PageReader", "PageResult", "read_page"]
