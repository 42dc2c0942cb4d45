"""The ``fastgd`` command line: ``demo``, ``info``, ``train``, ``bench``.

Each subcommand lives in its own module, imported only when it runs; a
module provides ``configure(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# name -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("fastgd._cli_demo", "the tutorial's run (y = x*w on x=[1,2,3]), printed as it prints it"),
    "info": ("fastgd._cli_info", "backends, threads, versions and the numba cache folder"),
    "train": ("fastgd._cli_train", "train on synthetic or .npy data with a progress bar"),
    "bench": ("fastgd.bench", "kernel microbenchmarks against numpy, torch and scikit-learn"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastgd", description="Fast gradient descent for linear least squares.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a subcommand whose module is not in this build
            sub.set_defaults(_missing=True)
            continue
        module.configure(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "_missing", False):
        print(f"fastgd {args.command}: not available in this build", file=sys.stderr)
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)
