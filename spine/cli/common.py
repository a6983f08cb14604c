"""What the commands share: the run's config and lake, and the command that derives what the
ledger holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from spine import config as config_
from spine.status import commands


def load_config(lake_root: str | None) -> dict:
    """The repository's config, with `--lake-root` when given."""
    return config_.load(lake_root=lake_root) if lake_root else config_.load()


def configfile(args: argparse.Namespace) -> Path | str:
    """The run's config: --configfile, else config/config.yaml of the repository this is run
    from (as snakemake does), else the package's."""
    here = Path("config/config.yaml")
    return getattr(args, "configfile", None) or (here if here.exists() else config_.CONFIG_PATH)


def lake_root(args: argparse.Namespace) -> str:
    """--lake-root, else lake_root of the run's config."""
    if args.lake_root:
        return args.lake_root
    return config_.load(configfile(args))["lake_root"]


def reports_command(root: str) -> str:
    """The command that derives what the ledger now holds, for this lake."""
    snake = commands(root)[0]
    return "snakemake --cores 2 reports" + (f" --config{snake}" if snake else "")


def regsho_enabled(args: argparse.Namespace) -> bool:
    """Whether the run's config has Reg SHO on (its calculations are then part of the lake)."""
    return bool(config_.load(configfile(args))["regsho"]["enabled"])
