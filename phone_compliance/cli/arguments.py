"""Command-line flags shared by the CLI's parser and the modules that read them."""

from __future__ import annotations

import argparse


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `phone-compliance run`."""
    parser.add_argument("--landing", default=None, help="landing folder or URI of client files")
    parser.add_argument("--warehouse", default=None, help="warehouse folder or URI")
    parser.add_argument(
        "--accept-snapshot-shrink",
        action="store_true",
        help="R13: publish although a snapshot shrank markedly (after checking it is genuine)",
    )
    parser.add_argument(
        "--accept-decision-flips",
        action="store_true",
        help="R13: publish although many decisions flip (after checking they are expected)",
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild Silver and Gold from all of Bronze instead of applying what is new",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="Dagster's events and Spark's output on the terminal instead of a log file",
    )
