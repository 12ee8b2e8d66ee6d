"""`masterocr train`: validate the config, then train here, under torchrun, or check and exit."""

from __future__ import annotations

import argparse
import json

from masterocr.cli.options import (
    bool_arg,
)
from masterocr.errors import UserError


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train from a config file (one process, or DDP under torchrun)")
    p.add_argument("-c", "--config", required=True, help="JSON config (the original MASTER schema)")
    p.add_argument("-r", "--resume", help="checkpoint (.pth) or run folder to continue from")
    p.add_argument("--finetune", nargs="?", const=True, default=None, type=bool_arg,
                   help="with -r: load its weights only, restart epochs and optimizer")
    p.add_argument("-d", "--device", help="cpu, cuda, cuda:N, or GPU ids like 0,1 (the local rank picks one)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", action="extend",
                   help="override config values, e.g. trainer.epochs=3 optimizer.args.lr=1e-4")
    p.add_argument("-dist", "--distributed", type=bool_arg, default=None,
                   help="false: debug mode, one process even under a launcher")
    p.add_argument("--local_world_size", "--local-world-size", type=int, default=None)
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--nproc", type=int, default=None,
                   help="launch N processes on this machine through torchrun's launcher")
    p.add_argument("--check", action="store_true",
                   help="validate the config (docs/config.schema.json), its dataset paths, save_dir, -r and the "
                        "model (built on the meta device), read the label files, print a summary and exit")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from masterocr.train.config import apply_overrides, load_config, run_settings
    from masterocr.train.preflight import check_run, dataset_sizes

    if args.nproc and args.nproc > 1 and not args.check:
        from masterocr.train.launch import launch_local

        return launch_local(args.nproc, args.argv)
    from masterocr.devices import parse_device
    from masterocr.limits import MAX_WORKERS, check_count

    parse_device(args.device, flag="-d")  # a malformed or absent device: one line before anything is read
    if args.nproc is not None:
        check_count("--nproc", args.nproc, 1, MAX_WORKERS, fix="processes to launch on this machine")
    if args.resume is not None and not args.resume.strip():
        raise UserError("-r is empty; pass a checkpoint .pth or a run folder")
    config = apply_overrides(load_config(args.config), args.set)
    source = f"{args.config} with --set" if args.set else args.config
    if args.local_world_size is not None:
        config["local_world_size"] = args.local_world_size
    if args.resume:  # `-r medium`: a shipped model by name, from any folder
        from masterocr.assets import model_file

        args.resume = str(model_file(args.resume))
    settings = run_settings(config, source, training=True)  # the one validation of what the run reads
    finetune = args.finetune if args.finetune is not None else settings.validated.finetune
    if finetune and not args.resume:
        raise UserError("--finetune needs a checkpoint: add -r path/to/checkpoint.pth")
    if settings.trainer.tensorboard:  # said by --check too, and before any run folder is made
        from masterocr.imports import check_installed
        from masterocr.train.setup import TENSORBOARD_FEATURE

        check_installed(TENSORBOARD_FEATURE, "tensorboard")
    params = check_run(settings, source, resume=None if finetune else args.resume,
                       finetune=args.resume if finetune else None)
    if args.check:
        sizes = dataset_sizes(settings, source)
        print(f"{args.config}: the config is valid: model {params / 1e6:.2f}M parameters "
              f"(d_model {settings.cfg.d_model}, {len(settings.charset)} classes); {sizes}")
        return 0
    from masterocr.train.loop import train

    summary = train(
        settings,
        resume=None if finetune else args.resume,
        finetune=args.resume if finetune else None,
        device=args.device,
        distributed=args.distributed,
    )
    print(json.dumps(summary))
    return 0
