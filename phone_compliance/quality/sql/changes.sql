-- Publication history validations (R14, system time): each query returns the rows that break a rule.

-- name: r14_one_change_per_pair_and_gold_version
SELECT account_number, phone_number, gold_version
FROM delta.`{warehouse}/gold/decision_changes`
GROUP BY account_number, phone_number, gold_version
HAVING count(*) > 1;

-- name: r14_changes_agree_with_their_kind
SELECT account_number, phone_number, gold_version, change
FROM delta.`{warehouse}/gold/decision_changes`
WHERE NOT CASE change
  WHEN 'insert' THEN old_reason IS NULL AND new_reason IS NOT NULL
  WHEN 'update' THEN old_reason IS NOT NULL AND new_reason IS NOT NULL
  WHEN 'delete' THEN old_reason IS NOT NULL AND new_reason IS NULL
  ELSE false END
  OR published_at IS NULL;

-- name: r14_latest_change_is_gold
-- (every pair in Gold was last published with Gold's decision; a pair last deleted is not in Gold)
SELECT coalesce(c.account_number, g.account_number) AS account_number,
       coalesce(c.phone_number, g.phone_number) AS phone_number
FROM (SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY account_number, phone_number
                                     ORDER BY gold_version DESC) AS latest
        FROM delta.`{warehouse}/gold/decision_changes`)
      WHERE latest = 1 AND change <> 'delete') c
FULL OUTER JOIN delta.`{warehouse}/gold/phone_consent` g
  ON c.account_number = g.account_number AND c.phone_number = g.phone_number
WHERE c.account_number IS NULL OR g.account_number IS NULL
   OR NOT (struct(c.new_can_send_sms, c.new_reason) <=> struct(g.can_send_sms, g.reason));
