"""`masterocr` command line: a thin layer over functions a user can call from Python."""

from __future__ import annotations

import argparse
import logging
import sys

from masterocr.cli.page import add_page
from masterocr.cli.read import add_eval, add_predict, add_test
from masterocr.cli.scaffold import add_init
from masterocr.cli.tools import add_export, add_lmdb, add_serve, add_synth
from masterocr.cli.train import add_train
from masterocr.errors import UserError
from masterocr.version import __version__

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masterocr", description="MASTER scene-text recognition")
    parser.add_argument("--version", action="version", version=f"masterocr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="masterocr's debug lines (other libraries stay at warnings)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_train, add_predict, add_eval, add_test, add_synth, add_lmdb, add_export, add_serve, add_init,
                add_page):
        add(sub)
    return parser


def _safe_streams() -> None:
    """Print what cannot be encoded (a file name of non-UTF-8 bytes, held as surrogates) as backslash escapes
    instead of failing with UnicodeEncodeError on the way out of an error message."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def setup_logging(verbose: bool) -> None:
    """masterocr's own lines at INFO (DEBUG with -v); every other library's at WARNING, so -v does not turn on
    PIL's or torch's debug streams."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, datefmt="%H:%M:%S")
    logging.getLogger("masterocr").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    _safe_streams()

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # `train --nproc` relaunches this same command line under torchrun
    setup_logging(args.verbose)
    try:
        with logging_redirect_tqdm():  # log lines printed above a progress bar, not glued to it
            return args.func(args)
    except UserError as exc:
        print(f"masterocr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"masterocr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
