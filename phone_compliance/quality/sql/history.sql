-- Decision history validations (R14): each query returns the rows that break a rule.

-- name: r14_current_interval_is_gold
-- (its decision and the facts it rests on: transforms/history.DECISION)
SELECT coalesce(h.account_number, g.account_number) AS account_number,
       coalesce(h.phone_number, g.phone_number) AS phone_number
FROM (SELECT * FROM delta.`{warehouse}/gold/decision_history` WHERE valid_to IS NULL) h
FULL OUTER JOIN delta.`{warehouse}/gold/phone_consent` g
  ON h.account_number = g.account_number AND h.phone_number = g.phone_number
WHERE h.account_number IS NULL OR g.account_number IS NULL
   OR NOT (struct(h.can_send_sms, h.reason, h.phone_source, h.is_deleted, h.delete_type,
                  h.deleted_at, h.has_sms_consent, h.sms_consent_updated_at)
           <=> struct(g.can_send_sms, g.reason, g.phone_source, g.is_deleted, g.delete_type,
                      g.deleted_at, g.has_sms_consent, g.sms_consent_updated_at));

-- name: r14_intervals_follow_one_another
SELECT account_number, phone_number, valid_from, valid_to FROM (
  SELECT *, lead(valid_from) OVER (PARTITION BY account_number, phone_number
                                   ORDER BY valid_from) AS next_from
  FROM delta.`{warehouse}/gold/decision_history`)
WHERE NOT (valid_to <=> next_from) OR valid_to <= valid_from;
