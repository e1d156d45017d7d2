"""`phone-compliance run`: the whole graph on this deployment's settings, then a short summary."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _ensure_sample(landing: str) -> None:
    """Generate the embedded sample when the default landing folder is absent."""
    if "://" in landing or Path(landing).exists():
        return
    import datagen

    print(f"no data at {landing}: generating the sample dataset there …", flush=True)
    datagen.sample(output_dir=landing)


def run(args: argparse.Namespace) -> int:
    """Materialize every asset (with checks) into the warehouse and print what happened."""
    if args.landing:
        os.environ["PHONE_COMPLIANCE_LANDING"] = args.landing
    if args.warehouse:
        os.environ["PHONE_COMPLIANCE_WAREHOUSE"] = args.warehouse
    from phone_compliance.settings import dagster_home, load_settings

    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    dagster_home().mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    _ensure_sample(settings.landing)

    import dagster as dg

    from phone_compliance.definitions import defs

    guardrails = {
        "accept_snapshot_shrink": bool(getattr(args, "accept_snapshot_shrink", False)),
        "accept_decision_flips": bool(getattr(args, "accept_decision_flips", False)),
    }
    started = time.monotonic()
    result = defs.get_job_def("refresh_decisions").execute_in_process(
        instance=dg.DagsterInstance.get(),
        run_config={"resources": {"guardrails": {"config": guardrails}}},
        raise_on_error=False,
    )
    elapsed = time.monotonic() - started
    from phone_compliance.summary import print_summary

    print_summary(result, settings, elapsed)
    return 0 if result.success and not _blocked(result) else 1


def _blocked(result) -> bool:
    import dagster as dg

    """True when a blocking check failed (Gold was then not published)."""
    return any(
        not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        for e in result.get_asset_check_evaluations()
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m phone_compliance.runner`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--landing")
    parser.add_argument("--warehouse")
    parser.add_argument("--accept-snapshot-shrink", action="store_true")
    parser.add_argument("--accept-decision-flips", action="store_true")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
