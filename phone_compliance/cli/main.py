"""`phone-compliance`: check pairs, audit one, serve decisions over HTTP, build the index, run
the pipeline.

    phone-compliance check ACCOUNT PHONE [--json] [--as-of D]  one decision (exit 0 allowed,
                                                             1 not allowed, 2 invalid input)
    phone-compliance check --input pairs.csv --output decisions.csv   scrub a campaign list
    phone-compliance audit ACCOUNT PHONE [--json] [--output report.csv|.parquet] [--warehouse W]
                                   the pair's evidence, decision history and publications (R14)
    phone-compliance serve [--host H] [--port P] [--index DIR]        the HTTP API
    phone-compliance index build PARQUET_DIR --gold-version N         build + publish an index
    phone-compliance index info                                       what is being served
    phone-compliance run [--landing L] [--warehouse W] [--verbose]     the whole pipeline
    phone-compliance ui                                               the Dagster UI

Only `run` and `ui` load pyspark and dagster (their modules are imported when chosen), so `check`
answers in milliseconds and `audit` (delta-rs and pyarrow) in seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from phone_compliance.cli.arguments import add_run_arguments
from phone_compliance.keys import normalize_as_of
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.service import DecisionIndex, IndexNotFound, InvalidKey, default_index_dir
from phone_compliance.settings import Settings

EXIT_ALLOWED = 0
EXIT_NOT_ALLOWED = 1
EXIT_INVALID = 2
EXIT_NO_INDEX = 3
EXIT_NO_TABLES = 3  # `audit`: no table under the warehouse, like a missing index for `check`


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phone-compliance",
        description="Phone compliance: may this number be texted on this account, and why.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    index_help = (
        "decision index directory (default: $PHONE_COMPLIANCE_INDEX, else "
        "<$PHONE_COMPLIANCE_WAREHOUSE or ./warehouse>/serving/decision_index)"
    )

    check = sub.add_parser(
        "check",
        help="decide one pair, or scrub a CSV of pairs",
        description=(
            "Decide one (account, phone) pair (R10), or a whole CSV with --input. Inputs are "
            "normalized per R11. With --as-of, the answer the files dated on or before that "
            "day give (R14). Single check exit status: 0 allowed, 1 not allowed, "
            "2 invalid input, 3 no index."
        ),
    )
    check.add_argument("account", nargs="?", help="account number (16 digits)")
    check.add_argument("phone", nargs="?", help="phone number, e.g. '(212) 555-0123'")
    check.add_argument("--json", action="store_true", help="print the decision as JSON")
    check.add_argument(
        "--input",
        metavar="CSV",
        help="CSV with header account_number,phone_number (or account,phone); .gz accepted",
    )
    check.add_argument(
        "--output", metavar="CSV", help="decisions CSV to write (default: standard output)"
    )
    check.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="the decision the files dated on or before this day give (R14); default: now",
    )
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.add_argument("--index", metavar="DIR", help=index_help)

    audit = sub.add_parser(
        "audit",
        help="one pair's evidence, decision history and publications, for counsel",
        description=(
            "Everything the warehouse holds about one (account, phone) pair: its evidence "
            "(every accepted Bronze row with its file, date and line, and the rejected rows "
            "whose account and phone read as the pair, with their reasons), its decision "
            "history (R14, business time) and the Gold publications that changed it (system "
            "time). Read from the Delta tables with delta-rs, no Spark. Exit status: 0 done, "
            "2 invalid input or report name, 3 no tables under the warehouse."
        ),
    )
    audit.add_argument("account", help="account number (16 digits)")
    audit.add_argument("phone", help="phone number, e.g. '(212) 555-0123'")
    audit.add_argument("--json", action="store_true", help="print the audit as one JSON object")
    audit.add_argument(
        "--output",
        metavar="REPORT",
        help="also write the audit as one flat table (a `section` column): .csv or .parquet",
    )
    audit.add_argument(
        "--warehouse",
        default=None,
        help="warehouse folder or URI (default: $PHONE_COMPLIANCE_WAREHOUSE or ./warehouse)",
    )

    serve = sub.add_parser(
        "serve",
        help="serve decisions over HTTP",
        description=(
            "HTTP API (FastAPI on uvicorn). API keys: PHONE_COMPLIANCE_API_KEYS "
            "(comma-separated) or PHONE_COMPLIANCE_API_KEYS_FILE (one per line)."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--index", metavar="DIR", help=index_help)
    serve.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to look for a newer index (default 1s)",
    )
    serve.add_argument(
        "--no-warm",
        action="store_true",
        help="do not fault a new index's pages in before serving it",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--no-docs",
        action="store_true",
        help="do not serve /docs, /redoc and /openapi.json (e.g. beyond loopback)",
    )
    serve.add_argument("--log-level", default="info")

    index = sub.add_parser("index", help="build or inspect the decision index")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    build = index_sub.add_parser(
        "build", help="build an index from Gold exported as Parquet and publish it"
    )
    build.add_argument("parquet", help="directory of Parquet files with the Gold columns")
    build.add_argument("--gold-version", type=int, required=True, help="Gold Delta version")
    build.add_argument("--index", metavar="DIR", help=index_help)
    build.add_argument("--keep", type=int, default=3, help="builds to keep (default 3)")
    info = index_sub.add_parser("info", help="show the published index")
    info.add_argument("--index", metavar="DIR", help=index_help)

    run = sub.add_parser(
        "run",
        help="run the whole pipeline (Spark + Dagster)",
        description="Materialize the whole graph with its checks, then print a summary.",
    )
    add_run_arguments(run)
    sub.add_parser(
        "ui",
        help="the Dagster UI on this project's instance",
        description="`dagster dev` on the code location, with DAGSTER_HOME defaulting to the "
        "project's .dagster_home/ (an exported DAGSTER_HOME wins).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `phone-compliance` script."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:  # e.g. `... --json | head`: the reader left; not our error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        return _check(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "serve":
        from phone_compliance.service.http import serve  # FastAPI: slow to import

        serve(
            args.index,
            host=args.host,
            port=args.port,
            poll_interval=args.poll_interval,
            access_log=args.access_log,
            log_level=args.log_level,
            warm=not args.no_warm,
            docs=not args.no_docs,
        )
        return 0
    if args.command == "index":
        return _index(args)
    if args.command == "run":
        # Imported only when chosen: it loads dagster and pyspark, which `check` must not pay.
        from phone_compliance.cli import run

        return run.run(args)
    if args.command == "ui":
        return _ui()
    raise AssertionError(args.command)


def _ui() -> int:
    """`dagster dev` with the project's instance folder unless DAGSTER_HOME is exported."""
    home = Locations(Settings.from_env()).dagster_home
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = ["dagster", "dev", "-m", "phone_compliance.definitions"]
    os.execvpe(command[0], command, env)


def _open_index(path: str | None) -> DecisionIndex:
    return DecisionIndex(path if path is not None else default_index_dir())


def _check(args: argparse.Namespace) -> int:
    if args.input is None and (args.account is None or args.phone is None):
        print("check: give ACCOUNT and PHONE, or --input CSV", file=sys.stderr)
        return EXIT_INVALID
    if args.input is not None and args.account is not None:
        print("check: give either ACCOUNT PHONE or --input CSV, not both", file=sys.stderr)
        return EXIT_INVALID
    try:
        as_of = normalize_as_of(args.as_of) if args.as_of is not None else None
    except InvalidKey as e:
        print(f"check: invalid input: {e}", file=sys.stderr)
        return EXIT_INVALID
    try:
        index = _open_index(args.index)
        if as_of is not None:
            index.require_history()
    except (IndexNotFound, ValueError) as e:
        print(f"check: {e}", file=sys.stderr)
        return EXIT_NO_INDEX
    if args.input is not None:
        from phone_compliance.service.batch import BatchInputError, check_csv  # pyarrow: slow

        try:
            summary = check_csv(
                args.input, args.output, index, as_of=as_of, progress=not args.no_progress
            )
        except (BatchInputError, FileNotFoundError) as e:
            print(f"check: {e}", file=sys.stderr)
            return EXIT_INVALID
        print(summary.describe(), file=sys.stderr)
        return 0
    try:
        decision = index.decide(args.account, args.phone, as_of)
    except InvalidKey as e:
        print(f"check: invalid input (R11): {e}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
    else:
        print(decision.explain())
    return EXIT_ALLOWED if decision.allowed else EXIT_NOT_ALLOWED


def _audit(args: argparse.Namespace) -> int:
    from phone_compliance.service import audit  # delta-rs and pyarrow: slow

    try:
        if args.output is not None:
            audit.report_format(args.output)
    except audit.ReportFormatError as e:
        print(f"audit: {e}", file=sys.stderr)
        return EXIT_INVALID
    locations = Locations(Settings.from_env().with_overrides(warehouse=args.warehouse))
    try:
        result = audit.audit(locations, args.account, args.phone)
    except InvalidKey as e:
        print(f"audit: invalid input (R11): {e}", file=sys.stderr)
        return EXIT_INVALID
    except audit.NoTables as e:
        print(f"audit: {e}", file=sys.stderr)
        return EXIT_NO_TABLES
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.explain())
    if args.output is not None:
        rows = audit.write_report(result, args.output)
        print(f"audit: {rows} row(s) written to {args.output}", file=sys.stderr)
    return 0


def _index(args: argparse.Namespace) -> int:
    target = args.index if args.index is not None else default_index_dir()
    if args.index_command == "build":
        from phone_compliance.service.build import IndexBuildError, build_index  # pyarrow: slow

        try:
            path = build_index(args.parquet, target, args.gold_version, keep=args.keep)
        except IndexBuildError as e:
            print(f"index build: {e}", file=sys.stderr)
            return EXIT_INVALID
        print(json.dumps(_open_index(str(path)).info(), indent=2))
        return 0
    try:
        print(json.dumps(_open_index(str(target)).info(), indent=2))
    except IndexNotFound as e:
        print(f"index info: {e}", file=sys.stderr)
        return EXIT_NO_INDEX
    return 0


def entry() -> None:
    """The console script: exit with `main`'s status, not tearing the interpreter down. Native
    thread pools (Arrow's) may abort the process while it tears down after the work is done and
    reported (apache/arrow#34314), turning a run's 0 into -6."""
    status = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
