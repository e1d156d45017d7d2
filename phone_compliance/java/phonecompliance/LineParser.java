package phonecompliance;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.DateTimeException;
import java.time.LocalDate;
import java.util.Arrays;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF3;

/**
 * Bronze's line parser (SPEC §1, R1.1, R2, R3): one delivered line in, its typed Bronze values
 * and the first failing check's reject code out.
 *
 * <p>A Spark Java UDF, because Spark's own expressions split, trim and regex-match each field of
 * each line in generated code at about twice this cost. Python (phone_compliance/line_parser.py)
 * says where each field is in the file's header ({@code layout}) and gives the SSN hash key; the
 * result's fields are {@code line_parser.PARSED}, in that order.
 *
 * <p>{@code layout} is the ASCII text {@code KIND;FIELDS;P0,P1,...}: the family (E enrollment, S snapshot, C
 * change), how many fields its lines have, and the position in the line of each field named by
 * the {@code F_*} constants below (-1: the family has no such field).
 */
public final class LineParser implements UDF3<String, byte[], byte[], Row> {
  private static final long serialVersionUID = 1L;

  // Positions within layout's list (line_parser.ROLES has the same order).
  static final int F_RECORD_ID = 0;
  static final int F_ACCOUNT = 1;
  static final int F_LEGACY = 2;
  static final int F_AGENCY = 3;
  static final int F_SSN = 4;
  static final int F_PHONE = 5;
  static final int F_TYPE = 6;
  static final int F_STATUS = 7;
  static final int F_SOURCE = 8;
  static final int F_TECHNOLOGY = 9;
  static final int F_SCORE = 10;
  static final int F_CONSENT_FLAG = 11;
  static final int F_CONSENT_DATE = 12;
  static final int F_SOFT_DELETE = 13;
  static final int F_EVENT_DATE = 14; // enrollment_date or record_date
  static final int ROLES = 15;

  // Reject codes (schema.py), in the order R1.1 checks them.
  static final String FIELD_COUNT = "FIELD_COUNT";
  static final String BAD_ACCOUNT = "BAD_ACCOUNT_NUMBER";
  static final String BAD_LEGACY = "BAD_LEGACY_IDENTIFIER";
  static final String MISMATCH = "ACCOUNT_LEGACY_MISMATCH";
  static final String BAD_PHONE = "BAD_PHONE_NUMBER";
  static final String BAD_DATE = "BAD_DATE";
  static final String BAD_CONSENT_FLAG = "BAD_CONSENT_FLAG";
  static final String BAD_SOFT_DELETE = "BAD_SOFT_DELETE_FLAG";

  private static final char[] HEX = "0123456789abcdef".toCharArray();

  // Per task (Spark deserializes a UDF per task): the parsed layout and the keyed digest.
  private transient byte[] layoutBytes;
  private transient char kind;
  private transient int fieldCount;
  private transient int[] positions;
  private transient byte[] key;
  private transient MessageDigest keyed;
  private transient int[] cuts; // where the line's separating pipes are, reused line to line

  @Override
  public Row call(String line, byte[] layout, byte[] hashKey) throws Exception {
    useLayout(layout);
    useKey(hashKey);
    String[] fields = fields(line);
    Object[] out = new Object[ROLES + 3];
    if (fields.length != fieldCount) {
      out[out.length - 1] = FIELD_COUNT;
      return RowFactory.create(out);
    }
    String legacy = field(fields, F_LEGACY);
    boolean legacyOk = legacy.length() == 17 && digits(legacy, 0, 16) && upper(legacy.charAt(16));
    String legacyAccount = legacyOk ? legacy.substring(0, 16) : null;
    String phoneRaw = field(fields, F_PHONE);
    String phone = normalizedPhone(phoneRaw);
    String scoreRaw = field(fields, F_SCORE);
    String reason;
    String account = legacyAccount;
    LocalDate consentDate = null;
    LocalDate eventDate = null;
    String consentFlag = null;
    String softDelete = null;
    if (kind == 'E') {
      account = field(fields, F_ACCOUNT);
      eventDate = date(field(fields, F_EVENT_DATE));
      reason = !(account.length() == 16 && digits(account, 0, 16)) ? BAD_ACCOUNT
          : !legacyOk ? BAD_LEGACY
          : !account.equals(legacyAccount) ? MISMATCH
          : phone == null ? BAD_PHONE
          : eventDate == null ? BAD_DATE
          : null;
    } else {
      String consentText = field(fields, F_CONSENT_DATE);
      consentDate = date(consentText);
      consentFlag = field(fields, F_CONSENT_FLAG);
      reason = !legacyOk ? BAD_LEGACY
          : phone == null ? BAD_PHONE
          : !(consentText.isEmpty() || consentDate != null) ? BAD_DATE
          : !(consentFlag.equals("Y") || consentFlag.equals("N") || consentFlag.isEmpty())
              ? BAD_CONSENT_FLAG
          : null;
      if (kind == 'C') {
        softDelete = field(fields, F_SOFT_DELETE);
        eventDate = date(field(fields, F_EVENT_DATE));
        if (reason == null) {
          reason = eventDate == null ? BAD_DATE
              : !(softDelete.equals("Y") || softDelete.equals("N")) ? BAD_SOFT_DELETE
              : null;
        }
      }
    }
    String ssn = field(fields, F_SSN);
    out[0] = positions[F_RECORD_ID] >= 0 ? field(fields, F_RECORD_ID) : null;
    out[1] = account;
    out[2] = legacy.length() >= 17 ? legacy.substring(16, 17) : "";
    out[3] = field(fields, F_AGENCY);
    out[4] = ssn.isEmpty() ? null : keyedHash(ssn);
    out[5] = phone;
    out[6] = field(fields, F_TYPE);
    out[7] = field(fields, F_STATUS);
    out[8] = field(fields, F_SOURCE);
    out[9] = field(fields, F_TECHNOLOGY);
    out[10] = qualityScore(scoreRaw);
    out[11] = scoreRaw;
    out[12] = phoneRaw;
    out[13] = consentFlag;
    out[14] = consentDate;
    out[15] = softDelete;
    out[16] = eventDate;
    out[17] = reason;
    return RowFactory.create(out);
  }

  private void useLayout(byte[] layout) {
    if (layout == layoutBytes || Arrays.equals(layout, layoutBytes)) {
      return;
    }
    String text = new String(layout, StandardCharsets.US_ASCII);
    String[] parts = text.split(";", -1);
    kind = parts[0].charAt(0);
    fieldCount = Integer.parseInt(parts[1]);
    positions = Arrays.stream(parts[2].split(",")).mapToInt(Integer::parseInt).toArray();
    if (positions.length != ROLES) {
      throw new IllegalArgumentException("layout needs " + ROLES + " positions: " + text);
    }
    layoutBytes = layout;
  }

  private void useKey(byte[] hashKey) throws NoSuchAlgorithmException {
    if (hashKey == key || Arrays.equals(hashKey, key)) {
      return;
    }
    keyed = MessageDigest.getInstance("SHA-256");
    keyed.update(hashKey);
    key = hashKey;
  }

  private String field(String[] fields, int role) {
    int at = positions[role];
    return at >= 0 ? fields[at] : "";
  }

  /**
   * SPEC §1: fields split on `|` and trimmed of spaces. A line with quotes splits only on the
   * pipes followed by an even number of quotes up to its end, and a field wrapped in quotes
   * loses them, `""` inside read as `"`.
   */
  String[] fields(String line) {
    int quotesAfter = line.indexOf('"') < 0 ? 0 : count(line, '"');
    boolean quoted = quotesAfter > 0;
    int n = 0;
    for (int i = 0; i < line.length(); i++) {
      char c = line.charAt(i);
      if (c == '"') {
        quotesAfter--;
      } else if (c == '|' && quotesAfter % 2 == 0) {
        if (cuts == null || n == cuts.length) {
          cuts = cuts == null ? new int[32] : Arrays.copyOf(cuts, 2 * n);
        }
        cuts[n++] = i;
      }
    }
    String[] out = new String[n + 1];
    int start = 0;
    for (int k = 0; k < n; k++) {
      out[k] = value(line.substring(start, cuts[k]), quoted);
      start = cuts[k] + 1;
    }
    out[n] = value(line.substring(start), quoted);
    return out;
  }

  private static String value(String field, boolean quoted) {
    String value = trimSpaces(field);
    if (quoted && value.startsWith("\"") && value.endsWith("\"")) {
      return value.length() < 2 ? "" : trimSpaces(value.substring(1, value.length() - 1).replace("\"\"", "\""));
    }
    return value;
  }

  private static int count(String s, char c) {
    int n = 0;
    for (int i = 0; i < s.length(); i++) {
      if (s.charAt(i) == c) {
        n++;
      }
    }
    return n;
  }

  /** Spark's trim: spaces only. */
  static String trimSpaces(String s) {
    int from = 0;
    int to = s.length();
    while (from < to && s.charAt(from) == ' ') {
      from++;
    }
    while (to > from && s.charAt(to - 1) == ' ') {
      to--;
    }
    return from == 0 && to == s.length() ? s : s.substring(from, to);
  }

  private static boolean digits(String s, int from, int to) {
    for (int i = from; i < to; i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') {
        return false;
      }
    }
    return true;
  }

  private static boolean upper(char c) {
    return c >= 'A' && c <= 'Z';
  }

  /** R3: E.164 `+1XXXXXXXXXX`, or null when the number cannot be normalized. */
  static String normalizedPhone(String raw) {
    StringBuilder digits = new StringBuilder(12);
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c >= '0' && c <= '9') {
        digits.append(c);
      }
    }
    int from = digits.length() == 11 && digits.charAt(0) == '1' ? 1 : 0;
    if (digits.length() - from != 10) {
      return null;
    }
    char area = digits.charAt(from);
    char exchange = digits.charAt(from + 3);
    if (area < '2' || exchange < '2') {
      return null;
    }
    return "+1" + digits.substring(from);
  }

  /** A strict `YYYY-MM-DD` date, or null (2023-02-30 and 20230101 are not dates). */
  static LocalDate date(String s) {
    if (s.length() != 10 || s.charAt(4) != '-' || s.charAt(7) != '-'
        || !digits(s, 0, 4) || !digits(s, 5, 7) || !digits(s, 8, 10)) {
      return null;
    }
    try {
      return LocalDate.of(
          Integer.parseInt(s, 0, 4, 10), Integer.parseInt(s, 5, 7, 10), Integer.parseInt(s, 8, 10, 10));
    } catch (DateTimeException e) {
      return null;
    }
  }

  /** The 1–100 score, or null (kept as text beside it, and counted by a data-quality check). */
  static Integer qualityScore(String s) {
    if (s.isEmpty() || s.length() > 3 || !digits(s, 0, s.length())) {
      return null;
    }
    int score = Integer.parseInt(s);
    return score >= 1 && score <= 100 ? score : null;
  }

  /**
   * SHA-256 of the secret key followed by the value, as hex (a keyed pseudonym). One digest per
   * row instead of HMAC's two: the key has a fixed length and the hash is only ever compared,
   * never verified as a MAC, so length extension does not apply.
   */
  private String keyedHash(String value) throws CloneNotSupportedException {
    MessageDigest digest = (MessageDigest) keyed.clone();
    byte[] sum = digest.digest(value.getBytes(StandardCharsets.UTF_8));
    char[] hex = new char[sum.length * 2];
    for (int i = 0; i < sum.length; i++) {
      hex[2 * i] = HEX[(sum[i] >> 4) & 15];
      hex[2 * i + 1] = HEX[sum[i] & 15];
    }
    return new String(hex);
  }
}
