-- Gold validations: each query returns the rows that break a rule; no rows means it holds.

-- name: r10_decision_follows_reason
SELECT account_number, phone_number FROM delta.`{warehouse}/gold/phone_consent`
WHERE can_send_sms <> (reason = 'ALLOWED')
   OR reason NOT IN ('ALLOWED', 'NOT_CLIENT_SOURCED', 'DELETED', 'CONSENT_WITHDRAWN');

-- name: r10_allowed_only_for_live_client_pairs
SELECT account_number, phone_number FROM delta.`{warehouse}/gold/phone_consent`
WHERE can_send_sms AND (phone_source <> 'CLIENT' OR is_deleted OR has_sms_consent = false);

-- name: r3_phone_numbers_are_e164
SELECT account_number, phone_number FROM delta.`{warehouse}/gold/phone_consent`
WHERE NOT phone_number RLIKE '^\\+1[2-9][0-9]{2}[2-9][0-9]{6}$'
   OR NOT account_number RLIKE '^[0-9]{16}$';

-- name: silver_and_gold_hold_the_same_pairs
SELECT s.account_number, s.phone_number
FROM delta.`{warehouse}/silver/pair_state` s
FULL OUTER JOIN delta.`{warehouse}/gold/phone_consent` g
  ON s.account_number = g.account_number AND s.phone_number = g.phone_number
WHERE s.account_number IS NULL OR g.account_number IS NULL;
