package phonecompliance;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.DateTimeException;
import java.time.LocalDate;
import java.util.Arrays;
import org.apache.spark.unsafe.Platform;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Bronze's line parser (SPEC §1, R1.1, R2, R3): one delivered line in, its typed Bronze values
 * and the first failing check's reject code out, as Spark's internal values (text as
 * {@code UTF8String} slices of the line, dates as days since 1970), so {@link DeliveredFiles}
 * hands Spark its rows without a conversion.
 *
 * <p>{@code layout} is the ASCII text {@code KIND;FIELDS;P0,P1,...}: the family (E enrollment, S
 * snapshot, C change), how many fields its lines have, and the position in the line of each field
 * named by the {@code F_*} constants below (-1: the family has no such field). The values come
 * out in the order of {@code line_parser.PARSED}.
 */
final class LineParser {
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
  static final int VALUES = ROLES + 3;
  // The names of out[0..VALUES), in order: the reader's schema must start with exactly these
  // (DeliveredFiles checks it), so Python and Java agree by name, not by position alone.
  static final String[] OUTPUT = {
    "record_id", "account_number", "consumer_type", "agency_id", "ssn_hash", "phone_number",
    "phone_type", "phone_status", "phone_source", "phone_technology", "quality_score",
    "quality_score_raw", "phone_raw", "consent_flag", "consent_date", "soft_delete_flag",
    "event_date", "reject_reason"
  };

  // Reject codes (schema.py), in the order R1.1 checks them.
  static final UTF8String FIELD_COUNT = UTF8String.fromString("FIELD_COUNT");
  static final UTF8String BAD_ACCOUNT = UTF8String.fromString("BAD_ACCOUNT_NUMBER");
  static final UTF8String BAD_LEGACY = UTF8String.fromString("BAD_LEGACY_IDENTIFIER");
  static final UTF8String MISMATCH = UTF8String.fromString("ACCOUNT_LEGACY_MISMATCH");
  static final UTF8String BAD_PHONE = UTF8String.fromString("BAD_PHONE_NUMBER");
  static final UTF8String BAD_DATE = UTF8String.fromString("BAD_DATE");
  static final UTF8String BAD_CONSENT_FLAG = UTF8String.fromString("BAD_CONSENT_FLAG");
  static final UTF8String BAD_SOFT_DELETE = UTF8String.fromString("BAD_SOFT_DELETE_FLAG");

  private static final UTF8String EMPTY = UTF8String.EMPTY_UTF8;
  private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

  private final char kind;
  private final int fieldCount;
  private final int[] positions;
  private final MessageDigest keyed;
  private int[] cuts = new int[32]; // where the line's separating pipes are, reused line to line
  // Each field of the current line: its bytes in `line` after trimming, or its unquoted text. A
  // field's UTF8String is made only when a role reads it (names never are).
  private byte[] line;
  private int[] starts = new int[32];
  private int[] ends = new int[32];
  private UTF8String[] unquotedFields = new UTF8String[32];

  LineParser(String layout, byte[] hashKey) throws NoSuchAlgorithmException {
    String[] parts = layout.split(";", -1);
    kind = parts[0].charAt(0);
    fieldCount = Integer.parseInt(parts[1]);
    positions = Arrays.stream(parts[2].split(",")).mapToInt(Integer::parseInt).toArray();
    if (positions.length != ROLES) {
      throw new IllegalArgumentException("layout needs " + ROLES + " positions: " + layout);
    }
    keyed = MessageDigest.getInstance("SHA-256");
    keyed.update(hashKey);
  }

  /** The values of one line (its bytes, without the line end) into {@code out[0..VALUES)}. */
  void parse(byte[] delivered, Object[] out) throws CloneNotSupportedException {
    byte[] line = validUtf8(delivered);
    int count = split(line);
    if (count != fieldCount) {
      Arrays.fill(out, 0, VALUES, null);
      out[VALUES - 1] = FIELD_COUNT;
      return;
    }
    UTF8String legacy = field(F_LEGACY);
    boolean legacyOk =
        legacy.numBytes() == 17 && digits(legacy, 0, 16) && upper(legacy.getByte(16));
    UTF8String legacyAccount = legacyOk ? prefix(legacy, 0, 16) : null;
    UTF8String phoneRaw = field(F_PHONE);
    UTF8String phone = normalizedPhone(phoneRaw);
    UTF8String scoreRaw = field(F_SCORE);
    UTF8String reason;
    UTF8String account = legacyAccount;
    Integer consentDate = null;
    Integer eventDate = null;
    UTF8String consentFlag = null;
    UTF8String softDelete = null;
    if (kind == 'E') {
      account = field(F_ACCOUNT);
      eventDate = date(field(F_EVENT_DATE));
      reason = !(account.numBytes() == 16 && digits(account, 0, 16)) ? BAD_ACCOUNT
          : !legacyOk ? BAD_LEGACY
          : !account.equals(legacyAccount) ? MISMATCH
          : phone == null ? BAD_PHONE
          : eventDate == null ? BAD_DATE
          : null;
    } else {
      UTF8String consentText = field(F_CONSENT_DATE);
      consentDate = date(consentText);
      consentFlag = field(F_CONSENT_FLAG);
      reason = !legacyOk ? BAD_LEGACY
          : phone == null ? BAD_PHONE
          : !(consentText.numBytes() == 0 || consentDate != null) ? BAD_DATE
          : !(isOneOf(consentFlag, 'Y', 'N') || consentFlag.numBytes() == 0) ? BAD_CONSENT_FLAG
          : null;
      if (kind == 'C') {
        softDelete = field(F_SOFT_DELETE);
        eventDate = date(field(F_EVENT_DATE));
        if (reason == null) {
          reason = eventDate == null ? BAD_DATE
              : !isOneOf(softDelete, 'Y', 'N') ? BAD_SOFT_DELETE
              : null;
        }
      }
    }
    UTF8String ssn = field(F_SSN);
    out[0] = positions[F_RECORD_ID] >= 0 ? field(F_RECORD_ID) : null;
    out[1] = account;
    out[2] = legacyOk ? prefix(legacy, 16, 1)
        : legacy.numBytes() >= 17 ? legacy.substring(16, 17)
        : EMPTY;
    out[3] = field(F_AGENCY);
    out[4] = ssn.numBytes() == 0 ? null : keyedHash(ssn);
    out[5] = phone;
    out[6] = field(F_TYPE);
    out[7] = field(F_STATUS);
    out[8] = field(F_SOURCE);
    out[9] = field(F_TECHNOLOGY);
    out[10] = qualityScore(scoreRaw);
    out[11] = scoreRaw;
    out[12] = phoneRaw;
    out[13] = consentFlag;
    out[14] = consentDate;
    out[15] = softDelete;
    out[16] = eventDate;
    out[17] = reason;
  }

  /**
   * The line as valid UTF-8: delivered bytes that are not (rare) are decoded with replacement
   * characters, as a Java string would hold them, so no stored text is invalid UTF-8.
   */
  private static byte[] validUtf8(byte[] line) {
    for (byte b : line) {
      if (b < 0) {
        return new String(line, StandardCharsets.UTF_8).getBytes(StandardCharsets.UTF_8);
      }
    }
    return line;
  }

  private UTF8String field(int role) {
    int at = positions[role];
    if (at < 0) {
      return EMPTY;
    }
    UTF8String unquoted = unquotedFields[at];
    return unquoted != null ? unquoted : UTF8String.fromBytes(line, starts[at], ends[at] - starts[at]);
  }

  /** Bytes of an ASCII text, without a copy (`substring` counts characters and copies). */
  private static UTF8String prefix(UTF8String ascii, int from, int length) {
    return UTF8String.fromAddress(ascii.getBaseObject(), ascii.getBaseOffset() + from, length);
  }

  /**
   * SPEC §1: fields split on `|` and trimmed of spaces. A line with quotes splits only on the
   * pipes followed by an even number of quotes up to its end, and a field wrapped in quotes
   * loses them, `""` inside read as `"`. Returns the number of fields.
   */
  int split(byte[] line) {
    this.line = line;
    int quotesAfter = 0;
    for (byte b : line) {
      if (b == '"') {
        quotesAfter++;
      }
    }
    boolean quoted = quotesAfter > 0;
    int n = 0;
    for (int i = 0; i < line.length; i++) {
      byte c = line[i];
      if (c == '"') {
        quotesAfter--;
      } else if (c == '|' && quotesAfter % 2 == 0) {
        if (n == cuts.length) {
          cuts = Arrays.copyOf(cuts, 2 * n);
        }
        cuts[n++] = i;
      }
    }
    if (n + 1 > starts.length) {
      starts = new int[2 * (n + 1)];
      ends = new int[2 * (n + 1)];
      unquotedFields = new UTF8String[2 * (n + 1)];
    }
    int start = 0;
    for (int k = 0; k <= n; k++) {
      int from = start;
      int to = k < n ? cuts[k] : line.length;
      start = to + 1;
      while (from < to && line[from] == ' ') {
        from++;
      }
      while (to > from && line[to - 1] == ' ') {
        to--;
      }
      starts[k] = from;
      ends[k] = to;
      unquotedFields[k] = null;
      if (quoted && to > from && line[from] == '"' && line[to - 1] == '"') {
        unquotedFields[k] =
            to - from < 2 ? EMPTY : UTF8String.fromBytes(unquoted(line, from + 1, to - 1)).trim();
      }
    }
    return n + 1;
  }

  /** The bytes between a field's quotes with each `""` read as `"`, left to right. */
  private static byte[] unquoted(byte[] line, int from, int to) {
    byte[] out = new byte[to - from];
    int n = 0;
    for (int i = from; i < to; i++) {
      out[n++] = line[i];
      if (line[i] == '"' && i + 1 < to && line[i + 1] == '"') {
        i++;
      }
    }
    return n == out.length ? out : Arrays.copyOf(out, n);
  }

  private static boolean digits(UTF8String s, int from, int to) {
    for (int i = from; i < to; i++) {
      byte c = s.getByte(i);
      if (c < '0' || c > '9') {
        return false;
      }
    }
    return true;
  }

  private static boolean upper(byte c) {
    return c >= 'A' && c <= 'Z';
  }

  private static boolean isOneOf(UTF8String s, char a, char b) {
    return s.numBytes() == 1 && (s.getByte(0) == a || s.getByte(0) == b);
  }

  /** R3: E.164 `+1XXXXXXXXXX`, or null when the number cannot be normalized. */
  static UTF8String normalizedPhone(UTF8String raw) {
    byte[] digits = new byte[11];
    int n = 0;
    for (int i = 0; i < raw.numBytes(); i++) {
      byte c = raw.getByte(i);
      if (c >= '0' && c <= '9') {
        if (n == digits.length) {
          return null;
        }
        digits[n++] = c;
      }
    }
    int from = n == 11 && digits[0] == '1' ? 1 : 0;
    if (n - from != 10 || digits[from] < '2' || digits[from + 3] < '2') {
      return null;
    }
    byte[] e164 = new byte[12];
    e164[0] = '+';
    e164[1] = '1';
    System.arraycopy(digits, from, e164, 2, 10);
    return UTF8String.fromBytes(e164);
  }

  /** A strict `YYYY-MM-DD` date as days since 1970, or null (2023-02-30 is not a date). */
  static Integer date(UTF8String s) {
    if (s.numBytes() != 10 || s.getByte(4) != '-' || s.getByte(7) != '-'
        || !digits(s, 0, 4) || !digits(s, 5, 7) || !digits(s, 8, 10)) {
      return null;
    }
    try {
      return (int) LocalDate.of(number(s, 0, 4), number(s, 5, 7), number(s, 8, 10)).toEpochDay();
    } catch (DateTimeException e) {
      return null;
    }
  }

  private static int number(UTF8String s, int from, int to) {
    int n = 0;
    for (int i = from; i < to; i++) {
      n = 10 * n + (s.getByte(i) - '0');
    }
    return n;
  }

  /** The 1–100 score, or null (kept as text beside it, and counted by a data-quality check). */
  static Integer qualityScore(UTF8String s) {
    int length = s.numBytes();
    if (length == 0 || length > 3 || !digits(s, 0, length)) {
      return null;
    }
    int score = number(s, 0, length);
    return score >= 1 && score <= 100 ? score : null;
  }

  /**
   * SHA-256 of the secret key followed by the value, as hex (a keyed pseudonym). One digest per
   * row instead of HMAC's two: the key has a fixed length and the hash is only ever compared,
   * never verified as a MAC, so length extension does not apply.
   */
  private UTF8String keyedHash(UTF8String value) throws CloneNotSupportedException {
    MessageDigest digest = (MessageDigest) keyed.clone();
    digest.update(
        (byte[]) value.getBaseObject(),
        (int) (value.getBaseOffset() - Platform.BYTE_ARRAY_OFFSET),
        value.numBytes());
    byte[] sum = digest.digest();
    byte[] hex = new byte[sum.length * 2];
    for (int i = 0; i < sum.length; i++) {
      hex[2 * i] = HEX[(sum[i] >> 4) & 15];
      hex[2 * i + 1] = HEX[sum[i] & 15];
    }
    return UTF8String.fromBytes(hex);
  }
}
