"""DDP on CPU (gloo, 2 processes, tiny preset): equivalence with one process, rank-0-only writes, SIGTERM and exact
resume, two loopback "nodes", a killed worker restarted by torchrun, resume on another world size, the launcher.

Every run is a subprocess (`python -m masterocr train` or torchrun), OMP_NUM_THREADS=1, 16 images, batch 4 per
rank, 8 optimizer steps. BatchNorm cannot be synchronised on CPU (torch's SyncBatchNorm refuses CPU tensors), so
the single-process twin of "2 ranks x batch 4" is "batch 4 x 2 accumulation steps": the same micro-batches (the
sampler gives rank r the r-th block of each global batch), the same per-micro-batch BN statistics and the same
averaged gradient. With one process and batch 8 the samples of each step are the same, but BN normalises over 8.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_word_set

from masterocr.formats.checkpoint import load_checkpoint
from masterocr.train.launch import strip_nproc, torchrun_args

STEPS = 8
WORDS = ["cat", "Dog", "tree", "HOUSE", "42", "sun", "Moon", "road", "a1b2", "x-ray", "Bird", "milk",
         "pen", "Fox", "lamp", "TV"]  # fmt: skip
TIMEOUT = 120


def _env(**extra) -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", TORCHELASTIC_ERROR_FILE="")
    env.pop("TORCHELASTIC_ERROR_FILE")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, words: Path, save_dir: Path, *, accum: int = 1, **trainer) -> Path:
    data = {"type": "TextDataset", "args": {"txt_file": str(words / "gt.txt"), "img_root": str(words / "images"),
                                            "split": ","}}
    cfg = {
        "name": "ddp", "run_id": "tiny", "seed": 11, "distributed": True, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "decoder_kwargs": {"dropout": 0.0}}},
        "train_dataset": data, "val_dataset": data,
        "train_loader": {"args": {"batch_size": 4, "num_workers": 0}},
        "val_loader": {"args": {"batch_size": 4, "num_workers": 0}},
        "optimizer": {"type": "Adam", "args": {"lr": 0.001}},
        "trainer": {"epochs": 100, "max_steps": STEPS, "do_validation": False, "val_step_interval": 8,
                    "log_step_interval": 1, "save_dir": str(save_dir), "save_step_interval": 1000,
                    "save_period": 1000, "train_num_workers": 0, "val_num_workers": 0, "progress": False,
                    "monitor": "off", "grad_accum_steps": accum, "auto_resume": True, **trainer},
    }  # fmt: skip
    path.write_text(json.dumps(cfg))
    return path


def run_dir(save_dir: Path) -> Path:
    return save_dir / "ddp" / "tiny"  # auto_resume: no timestamp


def _run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run in a new session; on timeout kill the whole group (torchrun's workers too, not only the launcher)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {TIMEOUT} s: {' '.join(cmd)}\n{err[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


KILL_RUNNER = Path(__file__).with_name("_train_with_kill.py")


def _program(kill: tuple[str, ...]) -> list[str]:
    """`-m masterocr`, or with `kill` (the runner's options) the runner that installs the kill step callback."""
    return [str(KILL_RUNNER), *kill, "--"] if kill else ["-m", "masterocr"]


def one_proc(cfg: Path, *args: str, kill: tuple[str, ...] = (), **env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *_program(kill), "-v", "train", "-c", str(cfg), "-d", "cpu", *args]
    return _run(cmd, _env(**env))


def torchrun(cfg: Path, *args: str, nproc: int = 2, launcher: tuple[str, ...] = (), kill: tuple[str, ...] = (),
             **env):
    cmd = [sys.executable, "-m", "torch.distributed.run", *(launcher or ("--standalone",)),
           "--nproc_per_node", str(nproc), *_program(kill), "-v", "train", "-c", str(cfg), "-d", "cpu", *args]
    return _run(cmd, _env(**env))


def ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


def losses(rdir: Path) -> list[float]:
    return [float(m.group(2)) for m in re.finditer(r"step (\d+) loss ([\d.]+)", (rdir / "train.log").read_text())]


def params(ckpt: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in ckpt["model_state_dict"].items() if "running_" not in k and "num_batches" not in k}


def assert_close(a: dict, b: dict, rel: float = 1e-4) -> None:
    """Per tensor: ||a - b|| <= rel * ||a|| (+ a tiny floor for all-zero tensors)."""
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    worst = max(((pa[k] - pb[k]).float().norm() / (pa[k].float().norm() + 1e-6)).item() for k in pa)
    assert worst <= rel, f"weights differ: worst relative difference {worst:.3g}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    return root, write_word_set(root / "words", WORDS)


@pytest.fixture(scope="module")
def ref2(setup):
    """The uninterrupted 2-process run: batch 4 per rank, 8 steps."""
    root, words = setup
    save = root / "ref2"
    proc = torchrun(write_config(root / "ref2.json", words, save, do_validation=True))
    ok(proc)
    return run_dir(save), proc


def test_two_ranks_match_one_process_with_accumulation(setup, ref2):
    root, words = setup
    rdir2, _ = ref2
    save = root / "ref1"
    ok(one_proc(write_config(root / "ref1.json", words, save, accum=2, do_validation=True)))
    rdir1 = run_dir(save)
    l1, l2 = losses(rdir1), losses(rdir2)
    assert len(l1) == len(l2) == STEPS
    assert l1 == pytest.approx(l2, rel=1e-4), (l1, l2)
    c1, c2 = load_checkpoint(rdir1 / "checkpoint-latest.pth"), load_checkpoint(rdir2 / "checkpoint-latest.pth")
    assert c1["step"] == c2["step"] == STEPS and c2["world_size"] == 2
    assert_close(c1, c2)
    # validation is split over the ranks and all-reduced: both runs scored all 16 images
    log2 = (rdir2 / "train.log").read_text()
    assert "num_labels 16" in log2 and "num_labels 16" in (rdir1 / "train.log").read_text()


def test_only_rank0_writes(setup, ref2):
    root, _ = setup
    rdir, proc = ref2
    runs = list((root / "ref2").rglob("*"))
    files = sorted(str(p.relative_to(root / "ref2")) for p in runs if p.is_file())
    assert files == ["ddp/tiny/checkpoint-latest.pth", "ddp/tiny/config.json", "ddp/tiny/train.log"], files
    log = (rdir / "train.log").read_text()
    assert log.count("world size 2") == 1  # one writer: rank 1's lines go to its stderr only
    assert log.count("saved ") == 1 and log.count(f"step {STEPS} loss") == 1
    assert "sync_batch_norm" not in log


@pytest.mark.slow  # 3 runs: ~50-70 s on the shared 2-core machine
def test_sigterm_then_exact_resume_in_one_process(setup):
    """SIGTERM after step 3 -> checkpoint-latest at step 3, exit 0; resuming ends bit-identical to no signal."""
    root, words = setup
    cfg = write_config(root / "one.json", words, root / "one_full", accum=2)
    # dropout on, to show the RNG state is restored as well
    cfg_d = json.loads(cfg.read_text())
    cfg_d["model_arch"]["args"]["decoder_kwargs"]["dropout"] = 0.1
    for name in ("one_full_d", "one_term"):
        cfg_d["trainer"]["save_dir"] = str(root / name)
        (root / f"{name}.json").write_text(json.dumps(cfg_d))
    # the uninterrupted run and the one stopped by SIGTERM run side by side
    full_run = subprocess.Popen([sys.executable, "-m", "masterocr", "train", "-c", str(root / "one_full_d.json"),
                                 "-d", "cpu"], env=_env(), stdout=subprocess.DEVNULL,
                                stderr=(root / "one_full_d.err").open("w"))
    stopped = one_proc(root / "one_term.json",
                       kill=("--kill-at", "3", "--kill-rank", "0", "--kill-signal", "TERM",
                             "--kill-marker", str(root / "one_term.marker")))
    ok(stopped)
    assert full_run.wait(timeout=TIMEOUT) == 0, (root / "one_full_d.err").read_text()[-4000:]
    rdir = run_dir(root / "one_term")
    assert load_checkpoint(rdir / "checkpoint-latest.pth")["step"] == 3
    assert "on signal 15" in (rdir / "train.log").read_text()
    ok(one_proc(root / "one_term.json"))  # auto_resume picks checkpoint-latest.pth up
    resumed = load_checkpoint(rdir / "checkpoint-latest.pth")
    full_d = load_checkpoint(run_dir(root / "one_full_d") / "checkpoint-latest.pth")
    assert resumed["step"] == STEPS
    for k, v in full_d["model_state_dict"].items():
        assert torch.equal(v, resumed["model_state_dict"][k]), k
    for k, v in full_d["optimizer"]["state"].items():
        assert all(torch.equal(t, resumed["optimizer"]["state"][k][n]) for n, t in v.items()), k


@pytest.mark.slow
def test_sigterm_under_ddp_and_resume_on_one_and_two_processes(setup, ref2):
    """SIGTERM reaching only rank 1: both ranks stop after the same step, rank 0 saves; resumes match."""
    root, words = setup
    rdir2, _ = ref2
    cfg = write_config(root / "term2.json", words, root / "term2")
    stopped = torchrun(cfg, kill=("--kill-at", "3", "--kill-rank", "1", "--kill-signal", "TERM",
                                  "--kill-marker", str(root / "term2.marker")))
    ok(stopped)
    rdir = run_dir(root / "term2")
    ckpt = load_checkpoint(rdir / "checkpoint-latest.pth")
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2
    # world-size change: a copy of the 2-process checkpoint resumed on 1 process (batch 4 x 2 accumulation)
    save1 = root / "term2_on1"
    run_dir(save1).mkdir(parents=True)
    shutil.copy(rdir / "checkpoint-latest.pth", run_dir(save1) / "checkpoint-latest.pth")
    proc = one_proc(write_config(root / "term2_on1.json", words, save1, accum=2))
    ok(proc)
    log1 = proc.stderr  # resume messages come before train.log is opened
    assert "resuming a 2-process checkpoint on 1 process(es)" in log1 and "the epoch goes on after the 8" in log1
    on1 = load_checkpoint(run_dir(save1) / "checkpoint-latest.pth")
    ref = load_checkpoint(rdir2 / "checkpoint-latest.pth")
    assert on1["step"] == STEPS and on1["world_size"] == 1
    assert_close(on1, ref)
    # and on 2 processes again
    ok(torchrun(cfg))
    again = load_checkpoint(rdir / "checkpoint-latest.pth")
    assert again["step"] == STEPS
    assert_close(again, ref)


@pytest.mark.slow
def test_two_loopback_nodes_form_one_job(setup, ref2):
    root, words = setup
    cfg = write_config(root / "nodes.json", words, root / "nodes")
    port = _free_port()
    cmds = []
    for node in (0, 1):
        launcher = ("--nnodes", "2", "--node_rank", str(node), "--master_addr", "127.0.0.1",
                    "--master_port", str(port))
        cmds.append([sys.executable, "-m", "torch.distributed.run", *launcher, "--nproc_per_node", "1", "-m",
                     "masterocr", "train", "-c", str(cfg), "-d", "cpu"])
    procs = [subprocess.Popen(c, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out[-2000:] + err[-4000:]
    ckpt = load_checkpoint(run_dir(root / "nodes") / "checkpoint-latest.pth")
    assert ckpt["step"] == STEPS and ckpt["world_size"] == 2
    assert_close(ckpt, load_checkpoint(ref2[0] / "checkpoint-latest.pth"))


@pytest.mark.slow
def test_killed_worker_restarts_and_resumes(setup, ref2):
    """Rank 1 SIGKILLs itself after step 5; torchrun restarts the group, which resumes from step 4."""
    root, words = setup
    cfg = write_config(root / "kill.json", words, root / "kill", save_step_interval=2)
    marker = root / "kill.marker"
    proc = torchrun(cfg, launcher=("--standalone", "--max-restarts", "1"),
                    kill=("--kill-at", "5", "--kill-marker", str(marker)))
    ok(proc)
    assert marker.exists()
    assert "test hook: rank 1 sends itself SIGKILL after step 5" in proc.stderr
    assert "auto_resume: continuing from" in proc.stderr and "at epoch 2, step 4" in proc.stderr
    ckpt = load_checkpoint(run_dir(root / "kill") / "checkpoint-latest.pth")
    assert ckpt["step"] == STEPS
    assert_close(ckpt, load_checkpoint(ref2[0] / "checkpoint-latest.pth"))


def test_launch_command_line():
    argv = ["train", "-c", "x.json", "--nproc", "2", "--set", "trainer.max_steps=3"]
    assert strip_nproc(argv) == ["train", "-c", "x.json", "--set", "trainer.max_steps=3"]
    assert torchrun_args(2, ["-c", "x.json", "--nproc=2"]) == [
        "--standalone", "--nproc_per_node", "2", "-m", "masterocr", "train", "-c", "x.json"]


@pytest.mark.slow
def test_masterocr_train_nproc_and_debug_mode(setup):
    """`masterocr train --nproc 2` launches 2 ranks; `-dist false` under a launcher trains alone in each."""
    root, words = setup
    cfg = write_config(root / "nproc.json", words, root / "nproc", max_steps=2)
    cmd = [sys.executable, "-m", "masterocr", "train", "-c", str(cfg), "-d", "cpu", "--nproc", "2"]
    ok(_run(cmd, _env()))
    ckpt = load_checkpoint(run_dir(root / "nproc") / "checkpoint-latest.pth")
    assert ckpt["world_size"] == 2 and ckpt["step"] == 2
    # debug mode: torchrun's variables are set, but -dist false keeps the process alone (no process group)
    cfg = write_config(root / "debug.json", words, root / "debug", max_steps=2)
    proc = one_proc(cfg, "-dist", "false", WORLD_SIZE=2, RANK=0, LOCAL_RANK=0)
    ok(proc)
    assert "distributed is off: every process trains alone" in proc.stderr
    assert load_checkpoint(run_dir(root / "debug") / "checkpoint-latest.pth")["world_size"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_with_accumulation_on_cpu(setup, amp):
    root, words = setup
    cfg = write_config(root / f"amp_{amp}.json", words, root / f"amp_{amp}", accum=2, amp=amp, max_steps=2)
    proc = one_proc(cfg)
    ok(proc)
    ckpt = load_checkpoint(run_dir(root / f"amp_{amp}") / "checkpoint-latest.pth")
    assert ckpt["step"] == 2 and all(torch.isfinite(v).all() for v in params(ckpt).values())
    assert ("amp fp16 on CPU" in proc.stderr) == (amp == "fp16")
    if amp == "fp16":
        assert ckpt["scaler"]["scale"] > 0  # the GradScaler's state is saved
