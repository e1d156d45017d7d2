"""Fault injection (issue 21, item 4): `phone-compliance run` killed with SIGKILL in the middle of
a Bronze table's write, between Bronze's tables and its ledger, in Silver's write and in Gold's
MERGE, then run again as it is. The warehouse must end as an uninterrupted run leaves it: Gold
the same as on a fresh warehouse, no Bronze row twice, one ledger row per delivered file version.

No hook in the product: the run is a subprocess in its own process group (the JVM dies with it),
with a temporary Dagster home holding the local deployment's instance config (as a person's runs
have it), and the test decides when to kill by watching the warehouse, where a Delta write's data
files appear before its commit does. The kills come one after the other on one warehouse, each
run recovering from the crash of the run before it, so every run but the last two is both a
recovery and a crash. When a run got past its point before the kill, the whole sequence is tried
once more on a bigger dataset; every point must at least have killed its run before it finished."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

import datagen
from phone_compliance import schema
from phone_compliance.lakehouse import delta
from phone_compliance.settings import Settings
from phone_compliance_tests import files
from phone_compliance_tests.conftest import lake_settings
from phone_compliance_tests.harness import failed_checks, run_pipeline

pytestmark = pytest.mark.slow

SSN_KEY = "test-only-key"
# A few thousand rows per snapshot file, over a dozen files: Bronze's snapshot write lasts long
# enough to be caught; a missed point is tried again with BIGGER.
ACCOUNTS, BIGGER = 2000, 6000
SEED = 21
POLL_SECONDS = 0.02
# Only so that a hung run fails instead of hanging the suite; never a performance assertion.
HUNG_SECONDS = 1800
# The local deployment's Dagster instance (its pools, its run queue): what a person's runs get.
LOCAL_INSTANCE = Path(Settings().dagster_home) / "dagster.yaml"
# What `phone-compliance run` prints when a step waits for another run's slot in a pool.
WAITS = " waits: "
DELTA_LOG = "_delta_log"
SNAPSHOT_TABLE = f"bronze/{schema.SNAPSHOT.name}"
FAMILY_TABLES = tuple(f"bronze/{f.name}" for f in schema.FAMILIES)
LEDGER_TABLE = "bronze/file_ledger"
SILVER_TABLE = "silver/pair_state"
GOLD_TABLE = "gold/phone_consent"
# What a ledger row says about a delivered version (not when, by which run, or its mtime).
LEDGER_COLUMNS = [
    c for c in schema.names(schema.FILE_LEDGER) if c not in ("ingested_at", "run_id", "fingerprint")
]


# --- the warehouse as files ------------------------------------------------------------------


@dataclass(frozen=True)
class TableFiles:
    """A Delta table as it lies on disk: its data files and its committed versions."""

    data: frozenset[str]
    commits: frozenset[int]


def _data_files(folder: str) -> set[str]:
    found: set[str] = set()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != DELTA_LOG:
                        found |= _data_files(entry.path)
                elif entry.name.endswith(".parquet"):
                    found.add(entry.path)
    except FileNotFoundError:
        pass
    return found


def _commits(folder: str) -> set[int]:
    try:
        with os.scandir(os.path.join(folder, DELTA_LOG)) as entries:
            names = [e.name.removesuffix(".json") for e in entries if e.name.endswith(".json")]
    except FileNotFoundError:
        return set()
    return {int(n) for n in names if n.isdigit()}


def table_files(warehouse: Path, table: str) -> TableFiles:
    folder = str(warehouse / table)
    return TableFiles(frozenset(_data_files(folder)), frozenset(_commits(folder)))


Baseline = dict[str, TableFiles]


def baseline(warehouse: Path) -> Baseline:
    """Every table's files before a run: a kill point is judged against what the run added."""
    tables = (*FAMILY_TABLES, LEDGER_TABLE, SILVER_TABLE, GOLD_TABLE)
    return {t: table_files(warehouse, t) for t in tables}


def _uncommitted_write(table: str) -> Callable[[Path, Baseline], bool]:
    """New data files in `table` and no new commit: its write is under way."""

    def reached(warehouse: Path, before: Baseline) -> bool:
        now = table_files(warehouse, table)
        return bool(now.data - before[table].data) and now.commits == before[table].commits

    return reached


def _bronze_written_ledger_not(warehouse: Path, before: Baseline) -> bool:
    """Every family table has a new commit, the ledger none."""
    committed = all(table_files(warehouse, t).commits - before[t].commits for t in FAMILY_TABLES)
    return (
        committed and table_files(warehouse, LEDGER_TABLE).commits == before[LEDGER_TABLE].commits
    )


@dataclass(frozen=True)
class KillPoint:
    name: str
    reached: Callable[[Path, Baseline], bool]


BRONZE_WRITE = KillPoint("bronze_snapshot_write", _uncommitted_write(SNAPSHOT_TABLE))
BEFORE_LEDGER = KillPoint("bronze_tables_before_ledger", _bronze_written_ledger_not)
SILVER_WRITE = KillPoint("silver_write", _uncommitted_write(SILVER_TABLE))
GOLD_MERGE = KillPoint("gold_merge", _uncommitted_write(GOLD_TABLE))


# --- the run as a process ----------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where one scenario's runs read and write: its landing, warehouse, Dagster home."""

    landing: Path
    warehouse: Path
    home: Path

    def command(self) -> list[str]:
        return [
            sys.executable,
            *("-m", "phone_compliance.cli", "run"),
            *("--landing", str(self.landing), "--warehouse", str(self.warehouse)),
        ]

    def env(self) -> dict[str, str]:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PHONE_COMPLIANCE_") and k != "DAGSTER_HOME"
        }
        return {
            **inherited,
            "DAGSTER_HOME": str(self.home),
            "PHONE_COMPLIANCE_SSN_HASH_KEY": SSN_KEY,
            "PHONE_COMPLIANCE_DRIVER_MEMORY": "2g",
            "PHONE_COMPLIANCE_SPARK_MASTER": "local[2]",
            "PHONE_COMPLIANCE_SHUFFLE_PARTITIONS": "2",
            # A killed JVM leaves its scratch (a copy of every package jar, ~0.5 GB) behind: in
            # the test's folder, not the machine's /tmp.
            "SPARK_LOCAL_DIRS": str(self.home / "spark"),
        }

    def start(self, out: Path) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        if LOCAL_INSTANCE.exists() and not (self.home / LOCAL_INSTANCE.name).exists():
            shutil.copy(LOCAL_INSTANCE, self.home / LOCAL_INSTANCE.name)
        with open(out, "ab") as sink:
            return subprocess.Popen(
                self.command(),
                env=self.env(),
                cwd=self.home,  # Spark's and Derby's droppings stay in the temporary folder
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the JVM is killed with it
            )

    def output(self, out: Path) -> str:
        """The run's terminal output and the end of its newest log file, for a failure."""
        text = out.read_text(errors="replace") if out.exists() else ""
        logs = sorted((self.home / "logs").glob("run-*.log"), key=lambda p: p.stat().st_mtime)
        tail = logs[-1].read_text(errors="replace")[-6000:] if logs else ""
        return f"{text}\n--- end of {logs[-1] if logs else 'no log'} ---\n{tail}"


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (a zombie's reaper may not be us)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _wait_until_gone(pgid: int) -> None:
    deadline = time.monotonic() + 120
    while _live_members(pgid):
        assert time.monotonic() < deadline, f"process group {pgid} outlived SIGKILL"
        time.sleep(0.1)


def run_to_completion(place: Place, out: Path) -> None:
    """`phone-compliance run` as a person types it again after a crash: no flag, no clean-up.

    No other run is alive here, so a step waiting for another run's slot waits for a dead one:
    the re-run would never finish by itself, and the test says so at once.
    """
    process = place.start(out)
    deadline = time.monotonic() + HUNG_SECONDS
    while process.poll() is None:
        text = out.read_text(errors="replace")
        stuck = WAITS in text or time.monotonic() > deadline
        if stuck:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            _wait_until_gone(process.pid)
            waiting = [line.strip() for line in text.splitlines() if WAITS in line]
            raise AssertionError(
                f"the re-run cannot finish: {waiting or 'it hung'}\n{place.output(out)}"
            )
        time.sleep(1)
    assert process.returncode == 0, f"the run exited {process.returncode}:\n{place.output(out)}"


@dataclass(frozen=True)
class Kill:
    """What a kill did: whether the run was still going (killed), and whether the warehouse was
    then exactly at the point (data files written, their commit not)."""

    point: str
    accounts: int
    killed: bool
    hit: bool


def run_and_kill(place: Place, point: KillPoint, out: Path, accounts: int) -> Kill:
    """Start a run and SIGKILL its process group as soon as the warehouse reaches `point`."""
    before = baseline(place.warehouse)
    process = place.start(out)
    deadline = time.monotonic() + HUNG_SECONDS
    fired = False
    while process.poll() is None:
        if point.reached(place.warehouse, before) or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            fired = True
            break
        time.sleep(POLL_SECONDS)
    code = process.wait()
    if fired:
        _wait_until_gone(process.pid)
    assert time.monotonic() <= deadline, f"the run hung:\n{place.output(out)}"
    killed = fired and code == -signal.SIGKILL
    # Judged once every process is dead: a commit landing between the look and the kill shows.
    hit = killed and point.reached(place.warehouse, before)
    if not killed:
        assert code == 0, f"the run exited {code} before the kill:\n{place.output(out)}"
    return Kill(point.name, accounts, killed, hit)


# --- data: a generated book, and one more file that changes decisions --------------------------


@dataclass(frozen=True)
class Dataset:
    base: Path  # the generated book
    full: Path  # the book and one more change file
    extra: Path  # that file, inside `full`


def _extra_change_file(landing: Path, manifest: dict) -> Path:
    """A SUPPLFWD file after the last snapshot soft-deleting every 50th pair of it: ~1% of pairs
    change (a few flip, under R13's 5% guard), so Gold's MERGE rewrites its files."""
    last = manifest["calendar"]["last_snapshot"]
    parts = [
        f["path"]
        for f in manifest["files"]
        if f["family"] == schema.SNAPSHOT.name and f["file_date"] == last
    ]
    lines = []
    for part in sorted(parts):
        lines += gzip.decompress((landing / part).read_bytes()).decode().splitlines()[1:]
    day = date.fromisoformat(last)
    deleted_on = (day + timedelta(days=8)).isoformat()
    rows = []
    for text in lines[::50]:
        snapshot_row = dict(zip(schema.SNAPSHOT_COLUMNS, text.split("|"), strict=True))
        del snapshot_row["cnsmr_phn_id"]
        rows.append(
            {
                "cnsmr_phn_hst_id": "1",
                **snapshot_row,
                "cnsmr_phn_sft_dlt_flg": "Y",
                "record_date": deleted_on,
            }
        )
    return files.write(landing, schema.CHANGE, (day + timedelta(days=10)).isoformat(), rows)


def make_dataset(root: Path, accounts: int) -> Dataset:
    base, full = root / "base", root / "full"
    manifest = datagen.generate(
        base, seed=SEED, accounts=accounts, start="2024-01-01", end="2024-12-31", workers=1
    )
    shutil.copytree(base, full)
    return Dataset(base, full, _extra_change_file(full, manifest))


def delivered(landing: Path) -> Counter:
    """(name, sha256) of every file in the landing's family folders."""
    found: Counter = Counter()
    for folder in {f.folder for f in schema.FAMILIES}:
        for path in (landing / folder).iterdir():
            if path.is_file():
                found[(path.name, hashlib.sha256(path.read_bytes()).hexdigest())] += 1
    return found


# --- the judge ---------------------------------------------------------------------------------


def _read(spark: SparkSession, warehouse: Path, table: str):
    return delta.read(spark, str(warehouse / table))


def _rows(spark: SparkSession, warehouse: Path, table: str, columns: list[str]) -> Counter:
    return Counter(tuple(r) for r in _read(spark, warehouse, table).select(*columns).collect())


def gold_rows(spark: SparkSession, warehouse: Path) -> Counter:
    return _rows(spark, warehouse, GOLD_TABLE, schema.names(schema.GOLD_DECISION))


def _differences(got: Counter, want: Counter) -> str:
    extra, missing = list((got - want).elements()), list((want - got).elements())
    return f"{len(extra)} unexpected rows, e.g. {extra[:3]}; {len(missing)} missing: {missing[:3]}"


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run of the full dataset on a fresh warehouse."""

    warehouse: Path
    gold: Counter
    ledger: Counter


def assert_recovered(spark: SparkSession, place: Place, reference: Reference) -> None:
    """The warehouse after the re-run: as the uninterrupted run left its own."""
    lineage = ["source_file", "line_number"]
    for table in (*FAMILY_TABLES, "bronze/rejects"):
        rows = _read(spark, place.warehouse, table).select(*lineage)
        count, distinct = rows.count(), rows.distinct().count()
        assert count == distinct, f"{table}: {count - distinct} duplicate (file, line) rows"
        got = Counter(tuple(r) for r in rows.collect())
        want = _rows(spark, reference.warehouse, table, lineage)
        assert got == want, f"{table}: {_differences(got, want)}"
    ledger = _rows(spark, place.warehouse, LEDGER_TABLE, LEDGER_COLUMNS)
    versions = Counter((row[0], row[LEDGER_COLUMNS.index("sha256")]) for row in ledger.elements())
    assert versions == delivered(place.landing), "not one ledger row per delivered file version"
    assert ledger == reference.ledger, f"ledger: {_differences(ledger, reference.ledger)}"
    gold = gold_rows(spark, place.warehouse)
    assert gold == reference.gold, f"Gold: {_differences(gold, reference.gold)}"


# --- fixtures: a dataset and its reference run, made once per size ----------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Callable[[int], Dataset]:
    made: dict[int, Dataset] = {}

    def of(accounts: int) -> Dataset:
        if accounts not in made:
            made[accounts] = make_dataset(tmp_path_factory.mktemp(f"data{accounts}"), accounts)
        return made[accounts]

    return of


@pytest.fixture(scope="module")
def reference(spark, dataset, tmp_path_factory) -> Callable[[int], Reference]:
    """The uninterrupted run the crashed warehouse is judged against (in this process)."""
    made: dict[int, Reference] = {}

    def of(accounts: int) -> Reference:
        if accounts not in made:
            lake = lake_settings(tmp_path_factory.mktemp(f"reference{accounts}")).with_overrides(
                landing=str(dataset(accounts).full), ssn_hash_key=SSN_KEY
            )
            result = run_pipeline(lake)
            assert result.success and not failed_checks(result), failed_checks(result)
            warehouse = Path(lake.warehouse)
            made[accounts] = Reference(
                warehouse,
                gold_rows(spark, warehouse),
                _rows(spark, warehouse, LEDGER_TABLE, LEDGER_COLUMNS),
            )
        return made[accounts]

    return of


# --- the scenario ------------------------------------------------------------------------------


def _crash_at_every_point_and_recover(
    spark, data: Dataset, ref: Reference, tmp: Path, accounts: int
) -> list[Kill]:
    """One warehouse, crashed at every point in turn, each time by the run that recovers from the
    crash before: the book's first run is killed in Bronze's snapshot write, the run after it
    between Bronze's tables and its ledger, the next in Silver's write; a run then finishes. One
    more file arrives, its run is killed in Gold's MERGE, and the same command runs again."""
    landing = tmp / "landing"
    shutil.copytree(data.base, landing)
    place = Place(landing, tmp / "warehouse", tmp / "dagster_home")
    kills = [
        run_and_kill(place, point, tmp / f"killed-{point.name}.out", accounts)
        for point in (BRONZE_WRITE, BEFORE_LEDGER, SILVER_WRITE)
    ]
    run_to_completion(place, tmp / "book.out")
    assert gold_rows(spark, place.warehouse) != ref.gold, "the extra file must change Gold"
    shutil.copy2(data.extra, landing / data.extra.relative_to(data.full))
    kills.append(run_and_kill(place, GOLD_MERGE, tmp / "killed-gold.out", accounts))
    run_to_completion(place, tmp / "rerun.out")
    assert_recovered(spark, place, ref)
    return kills


def test_a_run_killed_at_any_point_recovers_by_running_again(
    spark, dataset, reference, tmp_path, record_property
):
    for accounts in (ACCOUNTS, BIGGER):
        attempt = tmp_path / f"accounts{accounts}"
        attempt.mkdir()
        kills = _crash_at_every_point_and_recover(
            spark, dataset(accounts), reference(accounts), attempt, accounts
        )
        if all(kill.hit for kill in kills):
            break
    record_property("kills", repr(kills))
    print(f"\n{kills}")
    missed = [kill.point for kill in kills if not kill.killed]
    assert not missed, f"runs finished before the kill at {missed}: {kills}"
