"""Reading files, folders and globs with a recognizer, apart from the recognizer interface: one result entry per
image (named as the user named it, or by its path relative to the folder given), and predict_result.json."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from masterocr.data.folders import (
    Gathered,
    check_predict_folders,
    escape_name,
    gather_images,
    remove_stale,
    terminal_safe,
    write_json_atomic,
)
from masterocr.errors import UserError
from masterocr.limits import MAX_BATCH, check_count
from masterocr.runtime.base import BaseRecognizer, Prediction

log = logging.getLogger(__name__)

RESULT_FILE = "predict_result.json"


def gather(inputs: Sequence[str | Path], recursive: bool = False) -> Gathered:
    """The images `inputs` name (data.folders.gather_images), the passed-over entries warned about; UserError
    when there is nothing to read."""
    gathered = gather_images(list(inputs), recursive)
    _warn_passed_over(gathered)
    if not gathered.items:
        where = ", ".join(terminal_safe(str(i)) for i in inputs)
        single = len(inputs) == 1 and Path(inputs[0]).is_dir()
        raise UserError(f"image folder {where} holds no image files" if single else f"no image files in {where}")
    return gathered


def predict_entries(rec: BaseRecognizer, gathered: Gathered, batch_size: int = 32,
                    progress: bool = True) -> list[dict]:
    """One result entry per gathered item, in order (Prediction.to_json's shape; an unreadable or refused one
    has its `error`)."""
    check_count("batch_size", batch_size, 1, MAX_BATCH, fix="pass the number of images per forward pass")
    preds: dict[int, Prediction] = {
        i: Prediction(None, None, error=f"{path}: {why}; not read")
        for i, (_, path, why) in enumerate(gathered.items) if why is not None
    }
    todo = [i for i, item in enumerate(gathered.items) if item[2] is None]
    for start in tqdm(range(0, len(todo), batch_size), desc="predict", disable=not progress, leave=False):
        chunk = todo[start : start + batch_size]
        paths = [gathered.items[i][1] for i in chunk]
        preds.update(zip(chunk, rec.predict(paths, batch_size=batch_size)))
    return [_entry(name, preds[i]) for i, (name, _, _) in enumerate(gathered.items)]


def prepare_output(output_folder: str | Path) -> Path:
    """Create the output folder and remove an older predict_result.json there (said on stderr through the
    log), so a run that fails leaves none; returns the result's path."""
    out = Path(output_folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out} ({exc.strerror})") from exc
    result = out / RESULT_FILE
    if result.exists() or result.is_symlink():
        log.warning("replacing the older %s", terminal_safe(str(result)))
    remove_stale(result)
    return result


def predict_folder(rec: BaseRecognizer, folder: str | Path, output_folder: str | Path, batch_size: int = 32,
                   progress: bool = True, recursive: bool = False) -> tuple[Path, list[dict]]:
    """Read every image in `folder` (with `recursive`, its subfolders' too) and write
    output_folder/predict_result.json atomically (the original's format, with the result shape beside it).

    An older predict_result.json there is removed before inference starts, so a run that fails leaves none.
    Label and document files kept beside the images (data.folders.NOT_IMAGES), hidden files and subfolders
    are skipped with a warning; links to nothing, link loops and FIFOs get an entry with the reason, never
    opened; every other file gets an entry, with the reason when it cannot be read. A name that is not valid
    UTF-8 is written escaped (data.folders.escape_name) with "name_escaped": true."""
    check_predict_folders(folder, output_folder)
    gathered = gather([folder], recursive)
    result = prepare_output(output_folder)
    entries = predict_entries(rec, gathered, batch_size, progress)
    write_json_atomic(result, entries)
    return result, entries


def _entry(name: str, pred: Prediction) -> dict:
    """The JSON entry of one file, its name and error escaped when not valid UTF-8."""
    shown, escaped = escape_name(name)
    entry = pred.to_json(shown)
    if entry["error"] is not None:
        entry["error"] = escape_name(entry["error"])[0]
    if escaped:
        entry["name_escaped"] = True
    return entry


def _warn_passed_over(gathered: Gathered) -> None:
    """One warning per folder and kind of entry that gets no row: label/document files, hidden files,
    subfolders; one per entry refused without opening."""
    for folder, scan in gathered.scans:
        for what, paths in (("label/document files", scan.skipped), ("hidden files", scan.hidden),
                            ("subfolders", scan.folders)):
            if paths:
                names = ", ".join(terminal_safe(p.name) for p in paths[:5]) + (", ..." if len(paths) > 5 else "")
                hint = " (--recursive reads them)" if what == "subfolders" else ""
                log.warning("skipped %d %s in %s%s: %s", len(paths), what, terminal_safe(str(folder)), hint, names)
    for _, path, why in gathered.items:
        if why is not None:
            log.warning("not reading %s: %s", terminal_safe(str(path)), why)
