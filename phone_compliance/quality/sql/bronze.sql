-- Bronze validations: each query returns the rows that break a rule; no rows means it holds.
-- R1.3's checks judge each file name's version in force (ingest/ledger.py), not every ledger
-- row: they are Python checks in pipeline/checks.py (r1_3_rejected_files_have_a_reason,
-- r1_3_rejected_redeliveries), like R1.2's count in the tables.

-- name: r1_2_ledger_conserves_rows
SELECT source_file, rows_read, rows_accepted, rows_rejected
FROM delta.`{warehouse}/bronze/file_ledger`
WHERE status = 'INGESTED' AND rows_read <> rows_accepted + rows_rejected;

-- name: r3_enrollment_phones_are_e164
SELECT source_file, line_number FROM delta.`{warehouse}/bronze/enrollment`
WHERE NOT phone_number RLIKE '^\\+1[2-9][0-9]{2}[2-9][0-9]{6}$';

-- name: r2_change_accounts_are_16_digits
-- Snapshot accounts are validated in Silver (silver.sql), where each of their pairs is one row:
-- here the same regex would run on every row of every snapshot, ~50 per pair.
SELECT source_file, line_number FROM delta.`{warehouse}/bronze/supplfwd_change`
WHERE NOT account_number RLIKE '^[0-9]{16}$';

-- name: r1_1_change_flags_in_domain
SELECT source_file, line_number FROM delta.`{warehouse}/bronze/supplfwd_change`
WHERE soft_delete_flag NOT IN ('Y', 'N') OR consent_flag NOT IN ('Y', 'N', '');
