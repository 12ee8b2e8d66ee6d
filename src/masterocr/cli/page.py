"""`masterocr page`: find and read the text lines of page images and PDFs."""

from __future__ import annotations

import importlib.util
import logging

from masterocr.cli.options import check_out_folder, check_positive
from masterocr.errors import UserError
from masterocr.page.reader import DEFAULT_MODEL

log = logging.getLogger(__name__)

PAGE_MODULES = ("onnxruntime", "pyclipper", "pypdfium2")  # what the page extra brings


def add_page(sub) -> None:
    p = sub.add_parser("page", help="read whole pages (images or PDFs): find the lines, read them in order")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_PDF", help="page images or PDF files")
    p.add_argument("--out", required=True, help="folder for PAGE.json and PAGE.txt (DOC.p0001.json for a PDF)")
    p.add_argument("--overlay", action="store_true", help="also write PAGE.overlay.png: boxes and text drawn")
    p.add_argument("--pages", help="PDF pages to read, e.g. 1-3,7 (default: all, at most 100)")
    p.add_argument("--dpi", type=int, default=150, help="PDF rendering resolution (default 150)")
    p.add_argument("--boxes", help="a JSON file of line boxes to read instead of detecting (one page)")
    p.add_argument("--detector", default="ppocrv4", choices=("ppocrv4", "ppocrv6", "tesseract"),
                   help="line detector (default ppocrv4; tesseract needs the program on PATH)")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=("word", "line"),
                   help=f"shipped recognizer: word (word by word) or line (long lines in pieces); default "
                        f"{DEFAULT_MODEL}, the one that read synthetic pages better")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    p.set_defaults(func=cmd_page)


def cmd_page(args) -> int:
    missing = [m for m in PAGE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"reading pages needs {', '.join(missing)}; install the page extra: "
                        "pip install 'masterocr[page]'")
    check_positive(threads=args.threads, dpi=args.dpi)
    check_out_folder("--out", args.out)
    if args.boxes and len(args.inputs) > 1:
        raise UserError("--boxes gives one page's boxes; pass one input with it")
    from masterocr.page.output import write_page
    from masterocr.page.reader import PageReader

    reader = PageReader(detector=args.detector, model=args.model, threads=args.threads)
    failed = 0
    for path in args.inputs:
        try:
            for result in reader.read(path, pages=args.pages, boxes=args.boxes, dpi=args.dpi):
                write_page(result, args.out, args.overlay)
                print(f"{result.name}: {len(result.lines)} lines, {result.seconds:.2f} s")
        except UserError as exc:
            if len(args.inputs) == 1:
                raise
            log.error("%s", exc)
            failed += 1
    return 2 if failed else 0
