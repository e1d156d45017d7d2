-- Silver validations: each query returns the rows that break a rule; no rows means it holds.

-- name: r4_one_row_per_pair
SELECT account_number, phone_number, count(*) AS n FROM delta.`{warehouse}/silver/pair_state`
GROUP BY account_number, phone_number HAVING count(*) > 1;

-- name: r7_deletion_fields_consistent
SELECT account_number, phone_number FROM delta.`{warehouse}/silver/pair_state`
WHERE is_deleted <> (delete_type IS NOT NULL AND deleted_at IS NOT NULL)
   OR (delete_type IS NOT NULL AND delete_type NOT IN ('soft_delete', 'hard_delete'))
   OR is_deleted <> (deleted_at IS NOT NULL);

-- name: r5_deleted_at_not_before_presence
SELECT account_number, phone_number FROM delta.`{warehouse}/silver/pair_state`
WHERE deleted_at < latest_present_date;

-- name: r12_every_pair_names_its_files
SELECT account_number, phone_number FROM delta.`{warehouse}/silver/pair_state`
WHERE attributes_file IS NULL OR (is_deleted AND deletion_file IS NULL)
   OR (has_sms_consent IS NOT NULL AND consent_file IS NULL);

-- name: r2_r3_pair_keys_valid
-- Every Bronze row's key is a pair here, so this covers every accepted snapshot row (R2, R3).
SELECT account_number, phone_number FROM delta.`{warehouse}/silver/pair_state`
WHERE account_number IS NULL OR phone_number IS NULL
   OR NOT account_number RLIKE '^[0-9]{16}$'
   OR NOT phone_number RLIKE '^\\+1[2-9][0-9]{2}[2-9][0-9]{6}$';
