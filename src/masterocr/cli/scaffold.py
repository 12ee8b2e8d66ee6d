"""`masterocr init NAME`: a shipped training config written out to edit, so a wheel user has the README's
templates without the repository."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from masterocr.assets import CONFIG_NAMES, CONFIGS_DIR, shipped_config
from masterocr.errors import UserError


def add_init(sub) -> None:
    names = ", ".join(f"{short} ({file}.json)" for short, file in CONFIG_NAMES.items())
    p = sub.add_parser(
        "init", help="write a shipped training config to edit (masterocr init finetune > my.json)",
        description=f"Print a shipped training config, or write it to --out (never over an existing file). Short "
                    f"names: {names}; any other file of the package's configs by name, see --list.")
    p.add_argument("name", nargs="?", default="finetune", help="finetune (default), line, synth, or a config's name")
    p.add_argument("--out", "-o", help="write here instead of printing (refused when the file exists)")
    p.add_argument("--list", action="store_true", help="list the shipped configs and exit")
    p.set_defaults(func=cmd_init)


def cmd_init(args) -> int:
    if args.list:
        for path in sorted(CONFIGS_DIR.glob("*.json")):
            print(path.stem)
        return 0
    text = shipped_config(args.name).read_text(encoding="utf-8")
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    try:  # O_EXCL: an edited config of the user's is never overwritten
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise UserError(f"--out {out} exists; pick a new file name or remove it first") from None
    except OSError as exc:
        raise UserError(f"cannot write --out {out} ({exc.strerror}); check the folder") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {out}; edit its dataset paths (txt_file, img_root), then check it: masterocr train -c {out} --check",
          file=sys.stderr)
    return 0
