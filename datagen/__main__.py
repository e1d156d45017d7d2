"""Command line: `python -m datagen generate ...` and `python -m datagen sample ...`."""

from __future__ import annotations

import argparse
import sys
import time

from datagen.generator import DEFAULT_END, DEFAULT_START, generate, sample


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="datagen", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="a dataset in the reference shape")
    g.add_argument("--output-dir", required=True)
    g.add_argument(
        "--target-size-gb", type=float, default=1.0, help="size of the book: ~143k accounts per GB"
    )
    g.add_argument(
        "--accounts", type=int, default=None, help="number of accounts (overrides --target-size-gb)"
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--dirty", action="store_true", help="add every kind of bad input (R1)")
    g.add_argument("--start", default=DEFAULT_START)
    g.add_argument("--end", default=DEFAULT_END)
    g.add_argument("--workers", type=int, default=None, help="default: number of CPUs")
    g.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("sample", help="~500 accounts, plus plain-CSV copies for reading")
    s.add_argument("--output-dir", default="data_sample")
    s.add_argument("--preview-dir", default="data_preview")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--accounts", type=int, default=500)
    s.add_argument("--dirty", action="store_true")
    s.add_argument("--workers", type=int, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `datagen` script."""
    args = _parser().parse_args(argv)
    t0 = time.perf_counter()
    if args.command == "generate":
        manifest = generate(
            args.output_dir,
            target_size_gb=args.target_size_gb,
            seed=args.seed,
            dirty=args.dirty,
            accounts=args.accounts,
            start=args.start,
            end=args.end,
            workers=args.workers,
            progress=False if args.no_progress else None,
        )
        where = args.output_dir
    else:
        manifest = sample(
            args.output_dir,
            args.preview_dir,
            seed=args.seed,
            dirty=args.dirty,
            accounts=args.accounts,
            workers=args.workers,
        )
        where = f"{args.output_dir} (preview in {args.preview_dir})"
    c = manifest["counts"]
    print(
        f"wrote {len(manifest['files'])} files, {c['rows']:,} rows, "
        f"{c['size_bytes'] / 1e6:,.1f} MB, {c['accounts']:,} accounts to {where} "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
