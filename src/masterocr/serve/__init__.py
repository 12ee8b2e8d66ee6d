"""The HTTP service: routes, request limits, dynamic batcher and web page. Its packages come with the [serve]
extra; without them importing this package says so in one line instead of a traceback."""

from masterocr.imports import check_installed

check_installed("the HTTP service (masterocr serve)", "fastapi", "uvicorn", "multipart")
