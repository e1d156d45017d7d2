"""One test per SPEC rule, on tiny hand-written files, through the pure transforms; the reference
model must agree on every case too."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from phone_compliance import schema
from phone_compliance.ingest import bronze
from phone_compliance.ingest.inspect import inspect_all
from phone_compliance.ingest.landing import list_landing
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.settings import Settings
from phone_compliance_tests import files as f
from phone_compliance_tests.harness import decide_checked as decide

A = "1234567890123456"
B = "6543210987654321"
PHONE = "2125550123"
E164 = "+12125550123"


@pytest.fixture
def landing(tmp_path) -> Path:
    return tmp_path


def d(text: str) -> date:
    return date.fromisoformat(text)


def test_r1_1_bad_rows_are_evidence_of_nothing(spark, landing):
    f.write(
        landing,
        schema.ENROLLMENT,
        "2020-01-05",
        [
            f.enrollment(A, PHONE, "2020-01-03"),
            f.enrollment(B, "555-0123", "2020-01-03"),  # R3: not normalizable
            f.enrollment(B, PHONE, "2020-02-30"),  # not a date
            f.enrollment(B, PHONE, "2020-01-03", consumer_legacy_identifier=A + "P"),  # R2 mismatch
        ],
    )
    got = decide(spark, landing)
    assert list(got) == [(A, E164)]


def test_r2_r4_consumers_of_one_account_merge_into_one_pair(spark, landing):
    f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [
            f.snapshot(A, PHONE, letter="P"),
            f.snapshot(A, "(212) 555-0123", letter="S"),
        ],
    )
    assert list(decide(spark, landing)) == [(A, E164)]


def test_r3_phone_formats_normalize_to_e164(spark, landing):
    f.write(
        landing,
        schema.ENROLLMENT,
        "2020-01-05",
        [
            f.enrollment(A, raw, "2020-01-03")
            for raw in ("(212) 555-0123", "+1 212 555 0123", "12125550123", "212.555.0123")
        ],
    )
    assert list(decide(spark, landing)) == [(A, E164)]


def test_r4_same_phone_on_two_accounts_is_two_pairs(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE), f.snapshot(B, PHONE)])
    f.write(landing, schema.CHANGE, "2020-02-08", [f.change(A, PHONE, "2020-02-05", deleted="Y")])
    got = decide(spark, landing)
    assert got[(A, E164)]["is_deleted"] and not got[(B, E164)]["is_deleted"]


def test_r2_r3_silver_stops_on_a_key_bronze_should_have_rejected(spark):
    """Silver groups pairs by their keys as longs: a key that is not 16 digits (R2) or `+1` and
    ten digits (R3) fails the run, naming it and its file, instead of merging pairs."""
    from pyspark.errors import PySparkException

    from phone_compliance.transforms import silver

    def bronze(family: schema.Family, rows: list[dict]):
        return spark.createDataFrame(rows, schema.ddl(schema.BRONZE_SCHEMAS[family.name]))

    bad = {"account_number": "12345678901234x6", "phone_number": E164, "source_file": "f.gz"}
    ev = silver.evidence(
        bronze(schema.ENROLLMENT, [bad]),
        *[bronze(family, []) for family in (schema.SNAPSHOT, schema.CHANGE)],
    )
    with pytest.raises(PySparkException, match="R2/R3: account_number 12345678901234x6 in f.gz"):
        silver.reconcile(ev, {}).collect()


def test_r5_soft_delete_after_presence_deletes(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)])
    f.write(landing, schema.CHANGE, "2020-02-08", [f.change(A, PHONE, "2020-02-05", deleted="Y")])
    got = decide(spark, landing)[(A, E164)]
    assert (got["is_deleted"], got["delete_type"], got["deleted_at"]) == (
        True,
        schema.SOFT_DELETE,
        d("2020-02-05"),
    )
    assert got["reason"] == schema.DELETED and got["can_send_sms"] is False


def test_r5_same_day_deletion_beats_presence_whatever_the_source(spark, landing):
    # Fail safe: a SUPPLFWD Y and a snapshot row on the same date: deleted.
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)])
    f.write(landing, schema.CHANGE, "2020-02-03", [f.change(A, PHONE, "2020-02-01", deleted="Y")])
    got = decide(spark, landing)[(A, E164)]
    assert got["is_deleted"] and got["deleted_at"] == d("2020-02-01")


def test_r5_phone_re_added_after_deletion_is_not_deleted(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)])
    f.write(
        landing,
        schema.CHANGE,
        "2020-02-08",
        [f.change(A, PHONE, "2020-02-05", deleted="Y"), f.change(A, PHONE, "2020-02-06")],
    )
    got = decide(spark, landing)[(A, E164)]
    assert got["is_deleted"] is False and got["reason"] == schema.ALLOWED


def test_r5_only_soft_deleted_rows_is_deleted_as_of_the_earliest(spark, landing):
    f.write(
        landing,
        schema.CHANGE,
        "2020-02-08",
        [
            f.change(A, PHONE, "2020-02-06", deleted="Y"),
            f.change(A, PHONE, "2020-02-04", deleted="Y"),
        ],
    )
    got = decide(spark, landing)[(A, E164)]
    assert (got["delete_type"], got["deleted_at"]) == (schema.SOFT_DELETE, d("2020-02-04"))


def test_r6_pair_missing_from_later_snapshot_is_hard_deleted(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE), f.snapshot(B, PHONE)])
    f.write(landing, schema.SNAPSHOT, "2020-03-01", [f.snapshot(B, PHONE)])
    got = decide(spark, landing)[(A, E164)]
    assert (got["delete_type"], got["deleted_at"]) == (schema.HARD_DELETE, d("2020-03-01"))


def test_r6_enrollment_only_pair_deleted_by_later_snapshot(spark, landing):
    f.write(landing, schema.ENROLLMENT, "2020-01-05", [f.enrollment(A, PHONE, "2020-01-03")])
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(B, PHONE)])
    got = decide(spark, landing)[(A, E164)]
    assert (got["delete_type"], got["deleted_at"]) == (schema.HARD_DELETE, d("2020-02-01"))


def test_r6_enrollment_only_pair_not_deleted_without_a_recent_snapshot(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-01-01", [f.snapshot(B, PHONE)])
    f.write(landing, schema.ENROLLMENT, "2020-01-05", [f.enrollment(A, PHONE, "2020-01-03")])
    assert decide(spark, landing)[(A, E164)]["is_deleted"] is False


def test_r6_snapshot_on_the_presence_date_that_omits_the_pair_deletes_it(spark, landing):
    f.write(landing, schema.ENROLLMENT, "2020-02-01", [f.enrollment(A, PHONE, "2020-02-01")])
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(B, PHONE)])
    got = decide(spark, landing)[(A, E164)]
    assert (got["is_deleted"], got["deleted_at"]) == (True, d("2020-02-01"))


def test_r6_a_snapshot_of_several_parts_is_one_snapshot(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)], seq=1)
    f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [f.snapshot(B, PHONE)],
        seq=2,
        stamp=f.ts("2020-02-01", "060500"),
    )
    got = decide(spark, landing)
    assert not got[(A, E164)]["is_deleted"] and not got[(B, E164)]["is_deleted"]


def test_r6_a_snapshot_whose_files_are_all_unreadable_is_no_snapshot(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)])
    broken = f.write(landing, schema.SNAPSHOT, "2020-03-01", [f.snapshot(B, PHONE)])
    broken.write_bytes(broken.read_bytes()[:-12])  # truncated gzip: R1.3
    assert decide(spark, landing)[(A, E164)]["is_deleted"] is False


def test_r7_soft_and_hard_on_the_same_date_is_a_soft_delete(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE), f.snapshot(B, PHONE)])
    f.write(landing, schema.SNAPSHOT, "2020-03-01", [f.snapshot(B, PHONE)])
    f.write(landing, schema.CHANGE, "2020-03-02", [f.change(A, PHONE, "2020-03-01", deleted="Y")])
    got = decide(spark, landing)[(A, E164)]
    assert (got["delete_type"], got["deleted_at"]) == (schema.SOFT_DELETE, d("2020-03-01"))


def test_r7_not_deleted_carries_no_deletion_fields(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)])
    got = decide(spark, landing)[(A, E164)]
    assert (got["is_deleted"], got["delete_type"], got["deleted_at"]) == (False, None, None)


def test_r8_attributes_come_from_the_latest_row(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)])
    f.write(
        landing,
        schema.CHANGE,
        "2020-02-08",
        [f.change(A, PHONE, "2020-02-05", cnsmr_phn_src_val_txt="THIRD_PARTY")],
    )
    got = decide(spark, landing)[(A, E164)]
    assert got["phone_source"] == "THIRD_PARTY" and got["reason"] == schema.NOT_CLIENT_SOURCED


def test_r8_same_date_higher_source_rank_wins(spark, landing):
    f.write(
        landing,
        schema.ENROLLMENT,
        "2020-02-03",
        [f.enrollment(A, PHONE, "2020-02-01", phone_source="CONSUMER")],
    )
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE)])
    assert decide(spark, landing)[(A, E164)]["phone_source"] == "CLIENT"


def test_r8_unknown_source_is_kept_and_never_client(spark, landing):
    f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [f.snapshot(A, PHONE, cnsmr_phn_src_val_txt="client", cnsmr_phn_typ_val_txt="PAGER")],
    )
    got = decide(spark, landing)[(A, E164)]
    assert (got["phone_source"], got["phone_type"]) == ("client", "PAGER")
    assert got["reason"] == schema.NOT_CLIENT_SOURCED


def test_r8_ties_broken_by_row_text_not_read_order(spark, landing):
    f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [
            f.snapshot(A, PHONE, cnsmr_phn_id="1", cnsmr_phn_src_val_txt="CLIENT"),
            f.snapshot(A, PHONE, cnsmr_phn_id="2", cnsmr_phn_src_val_txt="OTHER"),
        ],
    )
    assert decide(spark, landing)[(A, E164)]["phone_source"] == "OTHER"


def test_r9_latest_consent_date_wins_and_n_wins_a_tie(spark, landing):
    f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [f.snapshot(A, PHONE, "Y", "2020-01-10"), f.snapshot(B, PHONE, "Y", "2020-01-10")],
    )
    f.write(
        landing,
        schema.CHANGE,
        "2020-02-08",
        [
            f.change(
                A, PHONE, "2020-02-05", consent="N", consent_date="2020-01-09"
            ),  # older: loses
            f.change(B, PHONE, "2020-02-05", consent="N", consent_date="2020-01-10"),  # tie: N wins
        ],
    )
    got = decide(spark, landing)
    assert got[(A, E164)]["has_sms_consent"] is True
    assert got[(B, E164)]["has_sms_consent"] is False
    assert got[(B, E164)]["reason"] == schema.CONSENT_WITHDRAWN


def test_r9_empty_consent_date_uses_the_evidence_date(spark, landing):
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE, "N", "")])
    f.write(
        landing,
        schema.CHANGE,
        "2020-02-08",
        [f.change(A, PHONE, "2020-02-05", consent="Y", consent_date="2020-01-31")],
    )
    got = decide(spark, landing)[(A, E164)]
    assert (got["has_sms_consent"], got["sms_consent_updated_at"]) == (False, d("2020-02-01"))


def test_r9_empty_flag_never_overrides_and_no_observation_is_null(spark, landing):
    f.write(
        landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE, "Y"), f.snapshot(B, PHONE)]
    )
    f.write(
        landing, schema.SNAPSHOT, "2020-03-01", [f.snapshot(A, PHONE, ""), f.snapshot(B, PHONE)]
    )
    got = decide(spark, landing)
    assert got[(A, E164)]["has_sms_consent"] is True
    assert got[(B, E164)]["has_sms_consent"] is None and got[(B, E164)]["can_send_sms"] is True


def test_r10_reasons_follow_spec_order(spark, landing):
    # Not CLIENT and deleted and withdrawn: the first failing reason is NOT_CLIENT_SOURCED.
    f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [f.snapshot(A, PHONE, "N", cnsmr_phn_src_val_txt="CONSUMER"), f.snapshot(B, PHONE, "N")],
    )
    f.write(
        landing,
        schema.CHANGE,
        "2020-02-08",
        [
            f.change(
                A, PHONE, "2020-02-05", deleted="Y", consent="N", cnsmr_phn_src_val_txt="CONSUMER"
            ),
            f.change(B, PHONE, "2020-02-05", deleted="Y", consent="N"),
        ],
    )
    got = decide(spark, landing)
    assert got[(A, E164)]["reason"] == schema.NOT_CLIENT_SOURCED
    assert got[(B, E164)]["reason"] == schema.DELETED


def test_r1_quoted_fields_holding_a_pipe_and_crlf_line_ends_parse(spark, landing):
    row = f.snapshot(A, PHONE, cnsmr_nm_lst_txt='"O|Brien"')
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [row], line_end="\r\n")
    got = decide(spark, landing)
    assert got[(A, E164)]["phone_source"] == "CLIENT"


def test_spec_1_columns_are_matched_by_name_not_position(spark, landing):
    columns = tuple(reversed(schema.SNAPSHOT.columns))
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [f.snapshot(A, PHONE, "N")], columns=columns)
    got = decide(spark, landing)[(A, E164)]
    assert got["has_sms_consent"] is False and got["phone_source"] == "CLIENT"


def test_r1_4_exact_duplicate_rows_count_once(spark, landing):
    row = f.snapshot(A, PHONE, "Y", "2020-01-10")
    f.write(landing, schema.SNAPSHOT, "2020-02-01", [row, row, row])
    got = decide(spark, landing)
    assert len(got) == 1 and got[(A, E164)]["has_sms_consent"] is True


@pytest.mark.parametrize("packed", [True, False])
def test_r1_2_every_line_keeps_its_file_and_line_number(spark, landing, packed, monkeypatch):
    """Files read several to a partition or one each: every physical line after the header keeps
    its own file and 1-based line number, and a rejected line its text as delivered."""
    if not packed:
        monkeypatch.setattr(bronze, "SMALL_FILES_BYTES", 0)
    rows = {
        day: [f"row {day} {i}" for i in range(n)]
        for day, n in [("2020-02-01", 3), ("2020-03-01", 5)]
    }
    paths = [f.write(landing, schema.SNAPSHOT, day, lines) for day, lines in rows.items()]
    locations = Locations(Settings(landing=str(landing)))
    inspected = inspect_all(list_landing(locations), locations, workers=1)
    got = bronze.parse_files(spark, schema.SNAPSHOT, inspected, b"k").collect()
    want = {
        (p.name, i + 2, text)
        for p, lines in zip(paths, rows.values(), strict=True)
        for i, text in enumerate(lines)
    }
    assert {(r["source_file"], r["line_number"], r["raw_text"]) for r in got} == want
    assert {r["reject_reason"] for r in got} == {schema.REJECT_FIELD_COUNT}
