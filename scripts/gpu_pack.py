"""Train the line model on a lent GPU: build a pack here, run it there (docs/lines.md, "Training on a lent GPU").

The lent machine has Python and PyTorch but reaches no package registry, and receives at most 64 MiB: the
checkout (with weights/) and the folders a call carries.

    python scripts/gpu_pack.py build [--python 3.12] [--from CHECKPOINT]   # here: writes .gpupack/
    python3 scripts/gpu_pack.py run --seconds 420                            # there: weights + JSON to $OUT
    python scripts/gpu_pack.py size                                        # here: still under 64 MiB?
    python scripts/gpu_pack.py join DIR --to FILE                           # here: the weights, when in parts

`build` writes the wheels that machine lacks (for the Python versions named), the word lists the samplers read
(data/synth/wordlists.py), the fonts cut to the charset's characters (data/synth/subset.py), optionally the
starting weights, and pack.json; it prints the size of each part and of all that travels, and fails over the
limit. `run` installs the wheels into a folder of its own (no registry), points the samplers at the word lists
and the fonts, trains for the seconds it is given (train/budget.py) and writes the fp16 weights with their
config and charset, and gpu_run.json, to $OUT (or --out). Only this file's top level runs before the wheels
are installed, so it imports the standard library alone up there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
# what `masterocr train` imports that the lent machines' image lacks (their package list: lmdb, rapidfuzz and
# pydantic are missing), with what pydantic needs; tqdm and typing-extensions travel to pin their versions
WHEELS = ("lmdb", "rapidfuzz", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
          "typing-extensions", "tqdm")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
OUT_FILE_LIMIT = 15 * MIB  # the device returns files of at most 16 MiB: larger weights come back in parts


def fail(msg: str) -> None:
    print(f"gpu_pack: {msg}", file=sys.stderr)
    raise SystemExit(2)


def tree_bytes(root: Path) -> int:
    """Bytes of what a device call sends besides the carried folders: tracked and untracked-not-ignored files."""
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    total = 0
    for name in filter(None, out.split(b"\0")):
        path = root / os.fsdecode(name)  # any file name the file system holds, UTF-8 or not
        if path.is_symlink() or path.is_file():  # a link travels as a link
            total += path.lstat().st_size
    return total


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# build ----------------------------------------------------------------------------------------------------------
def download_wheels(dest: Path, pythons: list[str]) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        pins = [f"{name}=={version(name)}" for name in WHEELS]
    except PackageNotFoundError as exc:
        fail(f"{exc.name} is not installed here; install masterocr with its dependencies first (make setup)")
    for py in pythons:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               py, "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(dest),
               *pins]
        if subprocess.run(cmd).returncode:
            fail(f"pip found no wheels of {' '.join(pins)} for Python {py}; name another --python")


def build(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from masterocr.data.synth.linetext import word_list_reads
    from masterocr.data.synth.subset import cut_fonts
    from masterocr.data.synth.wordlists import export_wordlists
    from masterocr.train.config import charset_from_config, load_config

    pack = Path(args.out).resolve()
    if pack.exists():
        if any(pack.iterdir()) and not (pack / "pack.json").exists():
            fail(f"{pack} exists and is not a pack (no pack.json); choose an empty or new --out folder")
        shutil.rmtree(pack)
    (pack / "wheels").mkdir(parents=True)
    config = load_config(args.config)
    charset = charset_from_config(config, Path(args.config).parent)
    download_wheels(pack / "wheels", args.python)
    words = export_wordlists(pack / "wordlists.json.gz", word_list_reads(charset))
    manifest = {"pythons": args.python, "config": os.path.relpath(Path(args.config).resolve(), ROOT),
                "words": words, "weights": None}
    if args.start:
        manifest["weights"] = "start.safetensors"
        if args.start.endswith(".safetensors"):
            shutil.copyfile(args.start, pack / "start.safetensors")
        else:
            ship(args.start, pack / "start.safetensors", {})
    limit = int(args.limit_mib * MIB)
    tree = tree_bytes(ROOT) if args.tree_mib is None else int(args.tree_mib * MIB)
    budget = limit - tree - dir_bytes(pack) - int(args.reserve_mib * MIB)
    manifest["fonts"] = cut_fonts(pack, charset, budget, args.max_latin, args.max_cjk)
    (pack / "pack.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    parts = {"checkout (tracked + untracked files)": tree, "wheels": dir_bytes(pack / "wheels"),
             "word lists": (pack / "wordlists.json.gz").stat().st_size, "fonts": dir_bytes(pack / "fonts"),
             "start weights": (pack / "start.safetensors").stat().st_size if args.start else 0}
    total = tree + dir_bytes(pack)
    for name, size in parts.items():
        print(f"{name:40s} {size / 1e6:7.2f} MB")
    print(f"{'total carried':40s} {total / 1e6:7.2f} MB ({total / MIB:.2f} MiB of {args.limit_mib:g} MiB); "
          f"{len(manifest['fonts']['faces'])} faces, {len(manifest['fonts']['left_out'])} left out")
    if total > limit:
        fail(f"the tree and {pack.name} come to {total / MIB:.2f} MiB, over {args.limit_mib:g} MiB")


# run ------------------------------------------------------------------------------------------------------------
def check_python(pythons: list[str]) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here not in pythons:
        fail(f"this machine runs Python {here}; the pack holds wheels for {', '.join(pythons)}: rebuild it with "
             f"`python scripts/gpu_pack.py build --python {here}`")


def install_wheels(pack: Path, site: Path) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--upgrade",
           "--find-links", str(pack / "wheels"), "--target", str(site), *WHEELS]
    if subprocess.run(cmd).returncode:
        fail(f"installing the pack's wheels failed (pip's message above); rebuild the pack for Python {here}")
    sys.path[:0] = [str(site), str(ROOT / "src")]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])


COUNTERS = ("step", "lines_seen", "chars_seen", "train_seconds")


def ship(checkpoint: str, out: Path | None, extra: dict) -> dict:
    """fp16 weights (+ config and charset beside them) of a checkpoint, when `out` is given; returns the
    checkpoint's progress counters."""
    from masterocr.formats.checkpoint import load_checkpoint
    from masterocr.formats.weights import TRAINING_DATA, write_shipped
    from masterocr.train.state import shown

    ckpt = load_checkpoint(checkpoint)
    counters = {k: ckpt.get(k) for k in COUNTERS}
    if out is not None:
        meta = {**shown(ckpt), **counters, "train_config": ckpt.get("config"), "license": "MIT",
                "training_data": TRAINING_DATA, **extra}
        write_shipped(ckpt["model_state_dict"], ckpt["model_config"], ckpt["charset"], out, True, meta)
    return counters


def split_parts(path: Path) -> list[str]:
    """`path` cut into path.part-00, -01... of at most OUT_FILE_LIMIT bytes when larger; the names kept."""
    if path.stat().st_size <= OUT_FILE_LIMIT:
        return [path.name]
    names = []
    with path.open("rb") as f:
        while chunk := f.read(OUT_FILE_LIMIT):
            part = path.with_name(f"{path.name}.part-{len(names):02d}")
            part.write_bytes(chunk)
            names.append(part.name)
    path.unlink()
    return names


def run(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    pack = Path(args.pack).resolve()
    try:
        manifest = json.loads((pack / "pack.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{pack / 'pack.json'} cannot be read ({exc}); carry the pack built by `gpu_pack.py build`")
    out = Path(args.out or os.environ.get("OUT") or "gpu-out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    check_python(manifest["pythons"])
    work = Path(tempfile.mkdtemp(prefix="masterocr-gpu-"))
    install_wheels(pack, work / "site")
    os.environ["MASTEROCR_WORDLISTS"] = str(pack / "wordlists.json.gz")
    import logging

    import torch

    from masterocr.train.budget import train_for_seconds
    from masterocr.train.config import apply_overrides, load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    config = apply_overrides(load_config(ROOT / (args.config or manifest["config"])), args.set)
    config.setdefault("trainer", {})["progress"] = False
    for key in ("train_dataset", "val_dataset"):
        if key in config:
            config[key].setdefault("args", {})["font_dirs"] = [str(pack / "fonts")]
    weights = args.weights or (str(pack / manifest["weights"]) if manifest.get("weights") else
                               str(ROOT / "weights" / "master_line.safetensors"))
    seconds = args.seconds - (time.perf_counter() - start) - args.keep_s
    done = train_for_seconds(config, weights, seconds, work / "runs", calibrate_steps=args.calibrate_steps,
                             device=args.device)
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"cpu ({os.cpu_count()} cores)"
    weights_out = out / "master_line.safetensors"
    last = ship(done["checkpoint"], weights_out, {"trained_on": device, "started_from": Path(weights).name})
    calib = done["calibration"]
    both = [last] if calib["checkpoint"] == done["checkpoint"] else [ship(calib["checkpoint"], None, {}), last]
    digest = hashlib.sha256(weights_out.read_bytes()).hexdigest()
    report = {"device": device, "python": sys.version.split()[0], "torch": torch.__version__,
              "started_from": weights, "seconds_given": args.seconds,
              "seconds": round(time.perf_counter() - start, 1), "steps": done["steps"],
              "planned_steps": done["planned_steps"], "seconds_per_step": done.get("seconds_per_step"),
              "stopped_early": done.get("stopped_early", False),
              **{k: round(sum(c[k] or 0 for c in both), 1) for k in ("lines_seen", "chars_seen", "train_seconds")},
              "calibration": calib, "last_validation": done["summary"]["metrics"],
              "weights_sha256": digest, "weights_files": split_parts(weights_out)}
    (out / "gpu_run.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)  # the runs' checkpoints (with optimizer state): the weights are out
    print(json.dumps(report, ensure_ascii=False))


def size(args: argparse.Namespace) -> None:
    """What a device call carrying the pack sends now (the checkout may have grown since the build)."""
    pack = Path(args.pack)
    tree, packed = tree_bytes(ROOT), dir_bytes(pack) if pack.is_dir() else 0
    total = tree + packed
    print(f"checkout {tree / 1e6:.2f} MB + {pack.name} {packed / 1e6:.2f} MB = {total / MIB:.2f} MiB "
          f"of {args.limit_mib:g} MiB")
    if total > args.limit_mib * MIB:
        fail("over the limit: rebuild the pack (`gpu_pack.py build`), which fits the fonts to the room left")


def join(args: argparse.Namespace) -> None:
    src = Path(args.dir)
    report = json.loads((src / "gpu_run.json").read_text(encoding="utf-8"))
    data = b"".join((src / name).read_bytes() for name in report["weights_files"])
    if hashlib.sha256(data).hexdigest() != report["weights_sha256"]:
        fail(f"the parts in {src} do not make the weights gpu_run.json names (sha256 differs); fetch them again")
    dest = Path(args.to)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    for name in ("config.json", "keys.txt"):
        shutil.copyfile(src / f"master_line.{name}", Path(f"{dest.with_suffix('')}.{name}"))
    print(f"wrote {dest} ({len(data) / 1e6:.1f} MB), step {report['steps']} on {report['device']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the pack (here)")
    b.add_argument("--out", default=str(ROOT / ".gpupack"))
    b.add_argument("--config", default=str(ROOT / "configs" / "line_gpu_ctc.json"))
    b.add_argument("--python", nargs="+", default=["3.12"], help="Python versions of the wheels (the lent "
                   "machines ran 3.12); each adds ~6 MB")
    b.add_argument("--from", dest="start", help="start from this checkpoint (.pth or .safetensors), not the "
                   "shipped weights: it travels as fp16 safetensors (~17 MB fewer for fonts)")
    b.add_argument("--limit-mib", type=float, default=64.0)
    b.add_argument("--reserve-mib", type=float, default=1.0, help="room left for files added to the checkout")
    b.add_argument("--max-latin", type=int, help="at most this many Latin families (default: all that fit)")
    b.add_argument("--max-cjk", type=int, help="at most this many training CJK designs (default: all that fit)")
    b.add_argument("--tree-mib", type=float, help="size of the rest of the tree (default: measured with git)")
    r = sub.add_parser("run", help="train for --seconds and write the results (there)")
    r.add_argument("--seconds", type=float, required=True, help="wall seconds for the whole command")
    r.add_argument("--pack", default=str(ROOT / ".gpupack"))
    r.add_argument("--out", help="where the results go (default $OUT)")
    r.add_argument("--config", help="training config (default: the one the pack was built for)")
    r.add_argument("--weights", help="starting weights (default: the pack's, else weights/master_line)")
    r.add_argument("--set", nargs="+", default=[], action="extend", metavar="KEY=VALUE")
    r.add_argument("--device", help="cpu, cuda, cuda:N (default: a GPU when there is one)")
    r.add_argument("--calibrate-steps", type=int, default=30)
    r.add_argument("--keep-s", type=float, default=20.0, help="seconds kept for writing the results")
    z = sub.add_parser("size", help="check what a call carrying the pack would send (here)")
    z.add_argument("--pack", default=str(ROOT / ".gpupack"))
    z.add_argument("--limit-mib", type=float, default=64.0)
    j = sub.add_parser("join", help="put the weights that came back in parts together (here)")
    j.add_argument("dir")
    j.add_argument("--to", required=True)
    args = parser.parse_args()
    try:
        {"build": build, "run": run, "size": size, "join": join}[args.cmd](args)
    except Exception as exc:
        errors = sys.modules.get("masterocr.errors")  # imported once the wheels are in place
        if errors is not None and isinstance(exc, errors.UserError):
            fail(str(exc))
        raise


if __name__ == "__main__":
    main()
