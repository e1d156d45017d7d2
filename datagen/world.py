"""The simulated book behind the files: accounts, consumers, phones and their histories.

Everything is decided here, in columns, before any file is written: when each (account,
phone) pair appears, is deleted (soft or hard), comes back, changes attributes or consent.
Files are then views of this one history at their dates, so they agree with each other
(a snapshot reflects the state at its date; a change record is dated inside its file's week).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datagen import vocab
from datagen.calendar import INF, Calendar

# --- Shape of the book; calibrated so 143k accounts give ~21M rows over the reference range ---
ACCOUNTS_PER_GB = 143_000
PHONES_P = (0.14, 0.31, 0.32, 0.23)  # phones per account at enrollment: 1, 2, 3, 4
CONSUMERS_P = (0.72, 0.23, 0.05)  # consumers per account: P, P+S, P+S+C
F_INITIAL = 0.78  # accounts already on the book when the range starts
P_EXTRA_PHONE = 0.14  # accounts adding one phone later (never past 4)
P_ADD_RECORDED = 0.7  # added phones announced by a SUPPLFWD row (others only show in snapshots)
P_SHARED = 0.3  # phones of a multi-consumer account linked to a second consumer too
P_CROSS_ACCOUNT = 0.003  # phones that also belong to another account
# Deletion rates, as shares of all pairs (pairs enrolled too late to be deleted before the last
# snapshot draw none, which the planted cases roughly make up for).
P_SOFT = 0.08
P_HARD = 0.05
P_READD = 0.12  # deleted pairs that come back later
P_ATTR_CHANGE = 0.10
P_Y0 = 0.05  # consent Y from the start
P_N0 = 0.048  # consent N from the start
P_LATE_Y = 0.006  # consent Y obtained later, by a change record
P_WITHDRAW = 0.06  # consented phones that later withdraw (Y then N)
P_NO_CONSENT_DATE = 0.15  # consent flags whose date the client left empty

# Attribute codes index the schema domains.
TYPE_P = (0.55, 0.25, 0.12, 0.08)  # CELL HOME WORK OTHER
STATUS_P = (0.82, 0.11, 0.07)  # ACTIVE INACTIVE DISCONNECTED
SOURCE_P = (0.78, 0.10, 0.09, 0.03)  # CLIENT CONSUMER THIRD_PARTY OTHER
TECH_BY_TYPE_P = (  # WIRELESS LANDLINE VOIP, per phone type: cells are mostly wireless
    (0.93, 0.0, 0.07),
    (0.0, 0.7, 0.3),
    (0.1, 0.6, 0.3),
    (0.34, 0.33, 0.33),
)
CLIENT, CONSUMER, THIRD_PARTY, OTHER = 0, 1, 2, 3

NO_FLAG, FLAG_Y, FLAG_N = 0, 1, 2
DEL_NONE, DEL_SOFT, DEL_HARD, DEL_CUSTOM = 0, 1, 2, 3
SPECIAL_NONE, SPECIAL_ENROLL_ONLY, SPECIAL_SOFT_DELETE_ONLY = 0, 1, 2

# Planted cases (the manifest lists their pairs under these names).
READDED_AFTER_SOFT_DELETE = "readded_after_soft_delete"
READDED_AFTER_HARD_DELETE = "readded_after_hard_delete"
SAME_DAY_SOFT_DELETE_AND_SNAPSHOT = "same_day_soft_delete_and_snapshot"
SAME_DAY_CHANGE_AND_SNAPSHOT_ABSENCE = "same_day_change_and_snapshot_absence"
CONSENT_CHANGED_TWICE = "consent_changed_twice"
CONSENT_WITHDRAWN = "consent_withdrawn"
CONSENT_WITHOUT_DATE = "consent_without_date"
EMPTY_CONSENT_AFTER_CONSENT = "empty_consent_after_consent"
ATTRIBUTE_CHANGE = "attribute_change"
NON_CLIENT_SOURCE = "non_client_source"
SOFT_DELETED = "soft_deleted"
HARD_DELETED = "hard_deleted"
EXACT_DUPLICATE_ROWS = "exact_duplicate_rows"
SPLIT_SNAPSHOT_PART = "split_snapshot_part"
PHONE_ON_SEVERAL_ACCOUNTS = "phone_on_several_accounts"
SHARED_PHONE_SEVERAL_CONSUMERS = "shared_phone_several_consumers"
ENROLLMENT_ONLY = "enrollment_only"
ENROLLMENT_ONLY_AFTER_LAST_SNAPSHOT = "enrollment_only_after_last_snapshot"
SOFT_DELETE_ONLY = "soft_delete_only"
PLANTED_CASES = (
    READDED_AFTER_SOFT_DELETE,
    READDED_AFTER_HARD_DELETE,
    SAME_DAY_SOFT_DELETE_AND_SNAPSHOT,
    SAME_DAY_CHANGE_AND_SNAPSHOT_ABSENCE,
    CONSENT_CHANGED_TWICE,
    CONSENT_WITHDRAWN,
    CONSENT_WITHOUT_DATE,
    EMPTY_CONSENT_AFTER_CONSENT,
    ATTRIBUTE_CHANGE,
    NON_CLIENT_SOURCE,
    SOFT_DELETED,
    HARD_DELETED,
    EXACT_DUPLICATE_ROWS,
    SPLIT_SNAPSHOT_PART,
    PHONE_ON_SEVERAL_ACCOUNTS,
    SHARED_PHONE_SEVERAL_CONSUMERS,
    ENROLLMENT_ONLY,
    ENROLLMENT_ONLY_AFTER_LAST_SNAPSHOT,
    SOFT_DELETE_ONLY,
)
# Cases planted on one pair of an account that is on the book from the start.
_SIMPLE_CASES = (
    READDED_AFTER_SOFT_DELETE,
    READDED_AFTER_HARD_DELETE,
    SAME_DAY_SOFT_DELETE_AND_SNAPSHOT,
    SAME_DAY_CHANGE_AND_SNAPSHOT_ABSENCE,
    CONSENT_CHANGED_TWICE,
    CONSENT_WITHDRAWN,
    CONSENT_WITHOUT_DATE,
    EMPTY_CONSENT_AFTER_CONSENT,
    ATTRIBUTE_CHANGE,
    NON_CLIENT_SOURCE,
    SOFT_DELETED,
    HARD_DELETED,
    EXACT_DUPLICATE_ROWS,
    SHARED_PHONE_SEVERAL_CONSUMERS,
    SOFT_DELETE_ONLY,
)
MIN_ACCOUNTS = 60


def planted_instances(n_accounts: int) -> int:
    """How many times each case is planted: several, fewer only for very small books."""
    return int(min(4, max(1, n_accounts // 80)))


@dataclass
class World:
    """The whole history in columns; files are views of it at their dates."""

    cal: Calendar
    # accounts
    acc_number: np.ndarray
    acc_agency: np.ndarray
    acc_enroll: np.ndarray
    acc_initial: np.ndarray
    agencies: tuple[str, ...]
    # consumers
    con_acc: np.ndarray
    con_letter: np.ndarray
    con_ssn: np.ndarray
    con_first: np.ndarray
    con_last: np.ndarray
    # pairs: presence is [s0, e0) and [s1, INF); attributes switch to set 1 on attr_day
    pair_acc: np.ndarray
    phone: np.ndarray
    s0: np.ndarray
    e0: np.ndarray
    s1: np.ndarray
    del_kind: np.ndarray
    attr_day: np.ndarray
    attrs: dict[str, np.ndarray]  # type/status/source/tech/score, each shape (P, 2)
    # consent events per pair, sorted, INF-padded: day, flag, record day of its change row
    cd: np.ndarray
    cf: np.ndarray
    cr: np.ndarray
    has_consent_date: np.ndarray
    cons_base: np.ndarray  # row of the pair's first event in the consent table
    # units: one per (consumer, phone) record, i.e. per snapshot row
    unit_pair: np.ndarray
    unit_con: np.ndarray
    unit_id: np.ndarray
    unit_fmt_snapshot: np.ndarray
    unit_fmt_enroll: np.ndarray
    unit_v1: np.ndarray
    unit_v2: np.ndarray
    # versions: a unit's record as it looks in a period (attributes, record id)
    ver_unit: np.ndarray
    ver_attrset: np.ndarray
    ver_id: np.ndarray
    # change rows (SUPPLFWD), sorted by file
    ch_file: np.ndarray
    ch_unit: np.ndarray
    ch_day: np.ndarray
    ch_sd: np.ndarray
    ch_blank: np.ndarray
    ch_dup: np.ndarray
    ch_id: np.ndarray
    # enrollment rows (ENRLMT), sorted by file
    en_file: np.ndarray
    en_unit: np.ndarray
    en_day: np.ndarray
    en_dup: np.ndarray
    # snapshots: parts per snapshot, and units written twice in one snapshot
    snapshot_parts: np.ndarray
    dup_snapshot: int
    dup_units: np.ndarray
    planted: dict[str, list[int]] = field(default_factory=dict)  # case -> pair indices

    def version_at(self, units: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        """The version row each unit shows on `day`."""
        p = self.unit_pair[units]
        return np.where(
            self.s1[p] <= day,
            self.unit_v2[units],
            np.where(self.attr_day[p] <= day, self.unit_v1[units], units),
        )

    def consent_at(self, pairs: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        """Row of the consent table in force for each pair on `day` (0 = no information)."""
        day = np.asarray(day)
        k = (self.cd[pairs] <= (day[..., None] if day.ndim else day)).sum(axis=1)
        return np.where(k > 0, self.cons_base[pairs] + k - 1, 0)

    def snapshot_units(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Units, versions and consent rows of snapshot j, in file order (duplicates included)."""
        day = int(self.cal.snapshot_days[j])
        alive = ((self.s0 <= day) & (day < self.e0)) | (self.s1 <= day)
        units = np.flatnonzero(alive[self.unit_pair])
        if j == self.dup_snapshot and len(self.dup_units):
            # R1.4 planted: the same row twice in one file, right after the original.
            units = np.sort(np.concatenate([units, np.intersect1d(units, self.dup_units)]))
        versions = self.version_at(units, day)
        consent = self.consent_at(self.unit_pair[units], day)
        return units, versions, consent

    def pair_key(self, p: int) -> dict[str, str]:
        """The normalized key (R2, R3) of pair p, as the manifest lists it."""
        return {
            "account_number": f"{int(self.acc_number[self.pair_acc[p]]):016d}",
            "phone_number": f"+1{int(self.phone[p]):010d}",
        }


def _unique_ints(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n distinct random integers in [lo, hi)."""
    out = rng.integers(lo, hi, n, dtype=np.int64)
    while True:
        _, first = np.unique(out, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            return out
        out[dup] = rng.integers(lo, hi, int(dup.sum()), dtype=np.int64)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct valid US numbers (R3): a real area code, exchange 200-999."""
    areas = np.array(vocab.AREA_CODES, dtype=np.int64)

    def draw(k: int) -> np.ndarray:
        area = areas[rng.integers(0, len(areas), k)]
        return area * 10**7 + rng.integers(200, 1000, k) * 10**4 + rng.integers(0, 10000, k)

    out = draw(n)
    while True:
        _, first = np.unique(out, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            return out
        out[dup] = draw(int(dup.sum()))


def _ssns(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fake 9-digit SSNs shaped like real ones (area 001-899 but not 666)."""
    area = rng.integers(1, 899, n)
    area = area + (area >= 666)
    return area * 10**6 + rng.integers(1, 100, n) * 10**4 + rng.integers(1, 10000, n)


def _agencies(rng: np.random.Generator, n: int) -> tuple[str, ...]:
    """Collection-agency codes like 'MRS0417'."""
    letters = np.array(list("ABCDEFGHJKLMNPRSTVWXY"))
    codes = set()
    while len(codes) < n:
        code = "".join(rng.choice(letters, 3)) + f"{int(rng.integers(100, 10000)):04d}"
        codes.add(code)
    return tuple(sorted(codes))


def _draw_attrs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Phone type, status, source, technology and quality score for n phones."""
    typ = rng.choice(4, n, p=TYPE_P)
    tech_cum = np.cumsum(np.array(TECH_BY_TYPE_P), axis=1)[typ]
    tech = (rng.random(n)[:, None] > tech_cum).sum(axis=1).clip(0, 2)
    score = np.clip(np.round(rng.beta(5, 2, n) * 100), 1, 100).astype(np.int16)
    return {
        "type": typ.astype(np.int8),
        "status": rng.choice(3, n, p=STATUS_P).astype(np.int8),
        "source": rng.choice(4, n, p=SOURCE_P).astype(np.int8),
        "tech": tech.astype(np.int8),
        "score": score,
    }


class _Builder:
    """Builds a World step by step; the random draws happen in a fixed order (determinism)."""

    def __init__(self, n_accounts: int, cal: Calendar, seed: int) -> None:
        if n_accounts < MIN_ACCOUNTS:
            raise ValueError(f"at least {MIN_ACCOUNTS} accounts are needed to plant every case")
        self.n = n_accounts
        self.cal = cal
        self.rng = np.random.default_rng([seed, 202])
        self.n_inst = planted_instances(n_accounts)
        self.explicit: list[tuple[int, int, int, bool]] = []  # (pair, day, sd flag, blank)
        self.dup_change_pairs: list[int] = []
        self.dup_enroll_pairs: list[int] = []

    # --- accounts and the plan of planted cases -------------------------------------------

    def accounts(self) -> None:
        """Account numbers, enrollment days, consumer and phone counts, agencies."""
        rng, cal, n = self.rng, self.cal, self.n
        self.acc_number = _unique_ints(rng, n, 10**15, 9 * 10**15)
        self.acc_initial = rng.random(n) < F_INITIAL
        before = cal.start - rng.integers(30, 3650, n)
        during = rng.integers(cal.start, cal.end + 1, n)
        self.acc_enroll = np.where(self.acc_initial, before, during).astype(np.int32)
        self.acc_ncon = (rng.choice(3, n, p=CONSUMERS_P) + 1).astype(np.int8)
        self.acc_k0 = (rng.choice(4, n, p=PHONES_P) + 1).astype(np.int8)
        # A later phone needs room (<4 phones) and time to be added before the last snapshot.
        room = np.maximum(self.acc_enroll, cal.start) + 30 < cal.last_snapshot - 30
        self.acc_extra = (self.acc_k0 < 4) & (rng.random(n) < P_EXTRA_PHONE) & room
        self.acc_special = np.zeros(n, dtype=np.int8)
        self.acc_plain = np.zeros(n, dtype=bool)
        self.agencies = _agencies(rng, 36)
        weights = 1 / np.arange(1, len(self.agencies) + 1)  # a few big agencies, a long tail
        self.acc_agency = rng.choice(len(self.agencies), n, p=weights / weights.sum())
        self.acc_agency = self.acc_agency.astype(np.int16)

    def plan(self) -> None:
        """Choose the accounts that carry planted cases and shape them for their case."""
        rng, cal, n = self.rng, self.cal, self.n
        idx = np.arange(n)
        head = rng.permutation(idx[self.acc_initial & (idx < int(0.7 * n))]).tolist()
        tail = rng.permutation(idx[self.acc_initial & (idx >= int(0.8 * n))]).tolist()
        window = (self.acc_enroll >= cal.start + 60) & (self.acc_enroll <= cal.last_snapshot - 60)
        enrolled = rng.permutation(idx[~self.acc_initial & window]).tolist()

        def take(pool: list[int], what: str) -> int:
            if not pool:
                raise ValueError(f"too few accounts to plant {what}; use more accounts")
            a = pool.pop()
            self.acc_plain[a] = True
            self.acc_extra[a] = False
            return a

        self.plan_simple = {
            case: [take(head, case) for _ in range(self.n_inst)] for case in _SIMPLE_CASES
        }
        self.plan_split = [take(tail, SPLIT_SNAPSHOT_PART) for _ in range(self.n_inst)]
        self.plan_cross = [
            (take(head, PHONE_ON_SEVERAL_ACCOUNTS), take(head, PHONE_ON_SEVERAL_ACCOUNTS))
            for _ in range(self.n_inst)
        ]
        self.plan_dup_enroll = [take(enrolled, EXACT_DUPLICATE_ROWS) for _ in range(self.n_inst)]
        self.plan_enroll_only = [take(enrolled, ENROLLMENT_ONLY) for _ in range(self.n_inst)]
        late = [take(enrolled, ENROLLMENT_ONLY_AFTER_LAST_SNAPSHOT) for _ in range(self.n_inst)]
        self.plan_late = late
        if cal.end <= cal.last_snapshot:
            raise ValueError("no day after the last snapshot to enroll phones on")
        for a in late:
            self.acc_enroll[a] = rng.integers(cal.last_snapshot + 1, cal.end + 1)
        for a in self.plan_simple[SHARED_PHONE_SEVERAL_CONSUMERS]:
            self.acc_ncon[a] = max(2, self.acc_ncon[a])
        for a in self.plan_enroll_only:
            self.acc_k0[a] = min(3, self.acc_k0[a])
            self.acc_special[a] = SPECIAL_ENROLL_ONLY
        for a in self.plan_simple[SOFT_DELETE_ONLY]:
            self.acc_k0[a] = min(3, self.acc_k0[a])
            self.acc_special[a] = SPECIAL_SOFT_DELETE_ONLY

    # --- consumers, pairs, units ------------------------------------------------------------

    def consumers(self) -> None:
        """Consumers of each account: letter, SSN, names (co-consumers mostly share a surname)."""
        rng = self.rng
        self.con_acc = np.repeat(np.arange(self.n), self.acc_ncon)
        nc = len(self.con_acc)
        self.con_start = np.concatenate([[0], np.cumsum(self.acc_ncon)[:-1]])
        self.con_letter = (np.arange(nc) - self.con_start[self.con_acc]).astype(np.int8)
        self.con_ssn = _ssns(rng, nc)
        self.con_first = rng.integers(0, len(vocab.FIRST_NAMES), nc).astype(np.int16)
        own_last = rng.integers(0, len(vocab.LAST_NAMES), nc).astype(np.int16)
        # Most co-consumers share the primary's family name.
        family = rng.random(nc) < 0.7
        primary_last = own_last[self.con_start[self.con_acc]]
        self.con_last = np.where(family, primary_last, own_last).astype(np.int16)

    def pairs(self) -> None:
        """Phones of each account, their attributes, owners and first presence day."""
        rng, cal = self.rng, self.cal
        k = (self.acc_k0 + self.acc_extra + (self.acc_special > 0)).astype(np.int64)
        self.pair_start = np.concatenate([[0], np.cumsum(k)[:-1]])
        self.acc_k = k
        acc = np.repeat(np.arange(self.n), k)
        n_p = len(acc)
        slot = np.arange(n_p) - self.pair_start[acc]
        self.pair_acc = acc
        self.is_orig = slot < self.acc_k0[acc]
        self.is_extra = (slot == self.acc_k0[acc]) & self.acc_extra[acc]
        self.is_special = (slot == k[acc] - 1) & (self.acc_special[acc] > 0)
        self.phone = _phones(rng, n_p)
        self.attr0 = _draw_attrs(rng, n_p)
        self.attr1 = {key: v.copy() for key, v in self.attr0.items()}
        self.plain = self.acc_plain[acc]

        # Natural cross-account sharing: a phone copied from a pair of another account.
        cross = (rng.random(n_p) < P_CROSS_ACCOUNT) & ~self.plain
        src = rng.integers(0, n_p, n_p)
        cross &= (acc[src] != acc) & ~self.plain[src]
        before = self.phone.copy()
        self.phone[cross] = self.phone[src[cross]]
        key = acc.astype(np.int64) * 10**10 + self.phone
        _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        clash = counts[inv] > 1
        self.phone[clash & cross] = before[clash & cross]

        # Owner consumer; some phones of multi-consumer accounts belong to two consumers.
        ncon = self.acc_ncon[acc].astype(np.int64)
        owner = np.where(slot == 0, 0, rng.integers(0, 1 << 30, n_p) % ncon)
        self.share = (ncon >= 2) & (rng.random(n_p) < P_SHARED) & ~self.is_special
        second = (owner + 1 + rng.integers(0, 1 << 30, n_p) % np.maximum(ncon - 1, 1)) % ncon
        for a in self.plan_simple[SHARED_PHONE_SEVERAL_CONSUMERS]:
            p = self.pair_start[a]
            self.share[p], owner[p], second[p] = True, 0, 1
        self.owner, self.second = owner, second

        # Presence: original phones from enrollment, later phones from a change-record day.
        s0 = self.acc_enroll[acc].astype(np.int32).copy()
        lo = np.maximum(self.acc_enroll[acc], cal.start) + 30
        added, ok = cal.pick_covered(rng, lo, np.full(n_p, cal.last_snapshot - 30))
        s0 = np.where(self.is_extra & ok, added, s0)
        self.add_recorded = self.is_extra & ok & (rng.random(n_p) < P_ADD_RECORDED)
        s0[self.is_special] = INF
        self.s0 = s0

    def histories(self) -> None:
        """Deletions, re-adds, attribute changes and consent, drawn for every pair."""
        rng, cal = self.rng, self.cal
        n_p = len(self.pair_acc)
        s0 = self.s0
        lo = np.maximum(s0, cal.start) + 1
        last = np.full(n_p, cal.last_snapshot)
        u = rng.random(n_p)
        soft_day, soft_ok = cal.pick_covered(rng, lo, last)
        hard_day = lo + (rng.random(n_p) * np.maximum(last - lo, 1)).astype(np.int32)
        soft = (u < P_SOFT) & soft_ok & (s0 < INF)
        hard = (u >= P_SOFT) & (u < P_SOFT + P_HARD) & (lo < last) & (s0 < INF)
        self.e0 = np.full(n_p, INF, dtype=np.int32)
        self.e0[soft] = soft_day[soft]
        self.e0[hard] = hard_day[hard]
        self.del_kind = np.where(soft, DEL_SOFT, np.where(hard, DEL_HARD, DEL_NONE)).astype(np.int8)
        # A re-add comes after a snapshot has shown the deletion.
        after = cal.next_snapshot_after(self.e0) + 1
        readd_day, readd_ok = cal.pick_covered(rng, after, last)
        readd = (soft | hard) & readd_ok & (rng.random(n_p) < P_READD)
        self.s1 = np.where(readd, readd_day, INF).astype(np.int32)

        # Attribute change while present the first time; the new record shows it from then on.
        alive_end = np.minimum(self.e0, cal.end + 1)
        attr_day, attr_ok = cal.pick_covered(rng, lo, alive_end)
        change = (rng.random(n_p) < P_ATTR_CHANGE) & attr_ok & (s0 < INF)
        self.attr_day = np.where(change, attr_day, INF).astype(np.int32)
        new = _draw_attrs(rng, n_p)
        bump = rng.integers(1, 100, n_p)
        for key in ("status", "source"):
            self.attr1[key] = np.where(change & (rng.random(n_p) < 0.4), new[key], self.attr0[key])
        self.attr1["score"] = np.where(
            change, (self.attr0["score"] - 1 + bump) % 100 + 1, self.attr0["score"]
        ).astype(np.int16)

        # Consent: events (day, flag, record day of the change row announcing it).
        self.cd = np.full((n_p, 3), INF, dtype=np.int32)
        self.cf = np.zeros((n_p, 3), dtype=np.int8)
        self.cr = np.full((n_p, 3), INF, dtype=np.int32)
        v = rng.random(n_p)
        y0 = (v < P_Y0) & (s0 < INF)
        n0 = (v >= P_Y0) & (v < P_Y0 + P_N0) & (s0 < INF)
        late = (v >= P_Y0 + P_N0) & (v < P_Y0 + P_N0 + P_LATE_Y) & (s0 < INF)
        c0 = s0 - rng.integers(0, 45, n_p)
        self.cd[:, 0] = np.where(y0 | n0, c0, INF)
        self.cf[:, 0] = np.where(y0, FLAG_Y, np.where(n0, FLAG_N, NO_FLAG))
        consent_end = np.minimum(self.e0, cal.last_snapshot)
        r_late, late_ok = cal.pick_covered(rng, lo, consent_end)
        late &= late_ok
        lag = rng.integers(0, 3, n_p)  # consent given a day or two before it is recorded
        self.cd[late, 0] = np.maximum(r_late[late] - lag[late], lo[late])
        self.cf[late, 0] = FLAG_Y
        self.cr[late, 0] = r_late[late]
        first_y = np.where(late, r_late + 1, lo)
        r_wd, wd_ok = cal.pick_covered(rng, first_y, consent_end)
        withdraw = (y0 | late) & wd_ok & (rng.random(n_p) < P_WITHDRAW)
        self.cd[withdraw, 1] = np.maximum(r_wd[withdraw] - lag[withdraw], self.cd[withdraw, 0] + 1)
        self.cf[withdraw, 1] = FLAG_N
        self.cr[withdraw, 1] = r_wd[withdraw]
        # A snapshot must not show a consent change before its change record is written: when
        # one falls between the consent day and the record day, the consent is dated that day.
        for k in (0, 1):
            recorded = self.cr[:, k] < INF
            early = recorded & (cal.next_snapshot_after(self.cd[:, k] - 1) < self.cr[:, k])
            self.cd[early, k] = self.cr[early, k]
        disordered = withdraw & (self.cd[:, 1] <= self.cd[:, 0])
        self.cd[disordered, 1] = self.cr[disordered, 1]
        self.has_date = ~((y0 | n0) & ~withdraw & (rng.random(n_p) < P_NO_CONSENT_DATE))

    # --- planted cases --------------------------------------------------------------------

    def _reset(self, p: int) -> None:
        """A plain pair: present from enrollment on, no events, CLIENT-sourced."""
        self.e0[p] = INF
        self.s1[p] = INF
        self.del_kind[p] = DEL_NONE
        self.attr_day[p] = INF
        for key in self.attr0:
            self.attr1[key][p] = self.attr0[key][p]
        self.attr0["source"][p] = self.attr1["source"][p] = CLIENT
        self.cd[p], self.cf[p], self.cr[p] = INF, NO_FLAG, INF
        self.has_date[p] = True
        self.add_recorded[p] = False

    def _between(self, j: int, k: int = 1) -> int:
        """A covered day strictly between snapshots j and j+k (a change-record day)."""
        s = self.cal.snapshot_days
        day, ok = self.cal.pick_covered(self.rng, np.array([s[j] + 1]), np.array([s[j + k]]))
        if not ok[0]:
            raise ValueError("no change file between two snapshots; widen the date range")
        return int(day[0])

    def _spread(self, i: int, room: int = 4) -> int:
        """Snapshot index for instance i, spreading instances over the range."""
        n_s = len(self.cal.snapshot_days)
        span = max(1, n_s - room - 3)
        return 2 + (i + 1) * span // (self.n_inst + 1)

    def _same_day_snapshot(self, i: int) -> int:
        """A snapshot index (not first, not last) whose date lies in some SUPPLFWD window."""
        cal = self.cal
        s = cal.snapshot_days
        nxt = np.searchsorted(cal.change_days, s, side="right")
        nxt_day = np.append(cal.change_days, INF)[nxt]
        good = np.flatnonzero(
            (nxt_day - s <= 7) & (np.arange(len(s)) >= 2) & (np.arange(len(s)) < len(s) - 2)
        )
        if not len(good):
            raise ValueError("no snapshot date falls inside a SUPPLFWD window")
        return int(good[(i * 7 + 3) % len(good)])

    def planted(self) -> dict[str, list[int]]:
        """Give the planned pairs their cases; returns case -> pair indices."""
        cal = self.cal
        s = cal.snapshot_days
        out: dict[str, list[int]] = {case: [] for case in PLANTED_CASES}
        planted_accounts = np.flatnonzero(self.acc_plain)
        for a in planted_accounts:
            for p in range(self.pair_start[a], self.pair_start[a] + self.acc_k[a]):
                if not self.is_special[p]:
                    self._reset(p)
        for case, accounts in self.plan_simple.items():
            for i, a in enumerate(accounts):
                p = int(self.pair_start[a])
                j = self._spread(i)
                if case == READDED_AFTER_SOFT_DELETE:
                    self.e0[p], self.del_kind[p] = self._between(j), DEL_SOFT
                    self.s1[p] = self._between(j + 2)
                elif case == READDED_AFTER_HARD_DELETE:
                    self.e0[p], self.del_kind[p] = s[j] + 3, DEL_HARD
                    self.s1[p] = self._between(j + 2)
                elif case == SAME_DAY_SOFT_DELETE_AND_SNAPSHOT:
                    # The snapshot of that day still lists the pair; the change says deleted.
                    jj = self._same_day_snapshot(i)
                    self.e0[p], self.del_kind[p] = s[jj] + 1, DEL_CUSTOM
                    self.explicit.append((p, int(s[jj]), 1, False))
                elif case == SAME_DAY_CHANGE_AND_SNAPSHOT_ABSENCE:
                    # A change record says present on the very day the snapshot omits the pair.
                    jj = self._same_day_snapshot(i)
                    self.e0[p], self.del_kind[p] = s[jj], DEL_CUSTOM
                    self.explicit.append((p, int(s[jj]), 0, False))
                elif case in (CONSENT_CHANGED_TWICE, CONSENT_WITHDRAWN):
                    first = FLAG_Y if (i % 2 == 0 or case == CONSENT_WITHDRAWN) else FLAG_N
                    other = FLAG_N if first == FLAG_Y else FLAG_Y
                    r1 = self._between(j)
                    self.cd[p, :2] = (self.s0[p] - 10, r1)
                    self.cf[p, :2] = (first, other)
                    self.cr[p, 1] = r1
                    if case == CONSENT_CHANGED_TWICE:
                        r2 = self._between(j + 2)
                        self.cd[p, 2], self.cf[p, 2], self.cr[p, 2] = r2, first, r2
                elif case == CONSENT_WITHOUT_DATE:
                    self.cd[p, 0] = self.s0[p] - 5
                    self.cf[p, 0] = FLAG_Y if i % 2 == 0 else FLAG_N
                    self.has_date[p] = False
                elif case == EMPTY_CONSENT_AFTER_CONSENT:
                    self.cd[p, 0], self.cf[p, 0] = self.s0[p] - 5, FLAG_Y
                    self.explicit.append((p, self._between(j), 0, True))
                elif case == ATTRIBUTE_CHANGE:
                    self.attr_day[p] = self._between(j)
                    before, after = (THIRD_PARTY, CLIENT) if i % 2 == 0 else (CLIENT, CONSUMER)
                    self.attr0["source"][p], self.attr1["source"][p] = before, after
                    self.attr1["status"][p] = (self.attr0["status"][p] + 1) % 3
                    self.attr1["score"][p] = self.attr0["score"][p] % 100 + 1
                elif case == NON_CLIENT_SOURCE:
                    src = (CONSUMER, THIRD_PARTY, OTHER)[i % 3]
                    self.attr0["source"][p] = self.attr1["source"][p] = src
                elif case == SOFT_DELETED:
                    self.e0[p], self.del_kind[p] = self._between(j), DEL_SOFT
                elif case == HARD_DELETED:
                    self.e0[p], self.del_kind[p] = s[j] + 3, DEL_HARD
                elif case == EXACT_DUPLICATE_ROWS:
                    # Duplicated in a snapshot (rows of this pair) and in a change file.
                    self.attr_day[p] = self._between(j)
                    self.attr1["score"][p] = self.attr0["score"][p] % 100 + 1
                    self.dup_change_pairs.append(p)
                elif case == SOFT_DELETE_ONLY:
                    p = int(self.pair_start[a] + self.acc_k[a] - 1)  # the special pair
                    self.attr0["source"][p] = self.attr1["source"][p] = CLIENT
                    self.explicit.append((p, self._between(j), 1, False))
                out[case].append(p)
        for a in self.plan_split:
            out[SPLIT_SNAPSHOT_PART].append(int(self.pair_start[a]))
        for i, (a, b) in enumerate(self.plan_cross):
            pa, pb = int(self.pair_start[a]), int(self.pair_start[b])
            self.phone[pb] = self.phone[pa]
            if i % 2 == 1:  # the pairs stay independent: one deleted, the other not (R4)
                self.e0[pa], self.del_kind[pa] = self._between(self._spread(i)), DEL_SOFT
            out[PHONE_ON_SEVERAL_ACCOUNTS] += [pa, pb]
        for a in self.plan_dup_enroll:
            p = int(self.pair_start[a])
            self.dup_enroll_pairs.append(p)
            out[EXACT_DUPLICATE_ROWS].append(p)
        for a in self.plan_enroll_only:
            out[ENROLLMENT_ONLY].append(int(self.pair_start[a] + self.acc_k[a] - 1))
        for a in self.plan_late:
            first = int(self.pair_start[a])
            self.s0[first : first + self.acc_k[a]] = self.acc_enroll[a]
            out[ENROLLMENT_ONLY_AFTER_LAST_SNAPSHOT] += list(range(first, first + self.acc_k[a]))
        return out

    # --- units, versions, rows ------------------------------------------------------------

    def units(self) -> None:
        """Consumer-phone records, their ids and raw phone formats, and their versions."""
        rng = self.rng
        n_p = len(self.pair_acc)
        per = 1 + self.share.astype(np.int64)
        self.unit_start = np.concatenate([[0], np.cumsum(per)[:-1]])
        self.unit_pair = np.repeat(np.arange(n_p), per)
        n_u = len(self.unit_pair)
        second = np.arange(n_u) - self.unit_start[self.unit_pair] == 1
        local = np.where(second, self.second[self.unit_pair], self.owner[self.unit_pair])
        self.unit_con = (self.con_start[self.pair_acc[self.unit_pair]] + local).astype(np.int64)
        # Record ids grow with creation order, with gaps like a real sequence.
        self.unit_id = 10_000_000 + np.cumsum(rng.integers(1, 4, n_u))
        self.unit_fmt_snapshot = rng.choice(6, n_u, p=vocab.SNAPSHOT_FORMAT_P).astype(np.int8)
        self.unit_fmt_enroll = rng.choice(6, n_u, p=vocab.ENROLLMENT_FORMAT_P).astype(np.int8)

        # Versions: 0..n_u-1 are the units as first recorded; then attribute changes; then
        # re-added records, which get a new record id.
        changed = np.flatnonzero(self.attr_day[self.unit_pair] < INF)
        readded = np.flatnonzero(self.s1[self.unit_pair] < INF)
        self.unit_v1 = np.arange(n_u)
        self.unit_v1[changed] = n_u + np.arange(len(changed))
        self.unit_v2 = self.unit_v1.copy()
        self.unit_v2[readded] = n_u + len(changed) + np.arange(len(readded))
        self.ver_unit = np.concatenate([np.arange(n_u), changed, readded])
        self.ver_attrset = np.concatenate(
            [
                np.zeros(n_u, np.int8),
                np.ones(len(changed), np.int8),
                (self.attr_day[self.unit_pair[readded]] < INF).astype(np.int8),
            ]
        )
        new_ids = int(self.unit_id[-1]) + np.cumsum(rng.integers(1, 4, len(readded)))
        self.ver_id = np.concatenate([self.unit_id, self.unit_id[changed], new_ids])

    def _expand(self, pairs: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, ...]:
        """Pair-level rows to unit-level rows: one row per consumer record of the pair."""
        per = 1 + self.share[pairs].astype(np.int64)
        rows = np.repeat(np.arange(len(pairs)), per)
        within = np.arange(len(rows)) - np.concatenate([[0], np.cumsum(per)[:-1]])[rows]
        units = self.unit_start[pairs[rows]] + within
        return (units, *(c[rows] for c in cols))

    def change_rows(self) -> None:
        """SUPPLFWD rows: adds, soft deletes, re-adds, attribute and consent changes."""
        cal, rng = self.cal, self.rng
        p_all = np.arange(len(self.pair_acc))
        parts = [
            (p_all[self.add_recorded], self.s0[self.add_recorded], 0),
            (p_all[self.del_kind == DEL_SOFT], self.e0[self.del_kind == DEL_SOFT], 1),
            (p_all[self.s1 < INF], self.s1[self.s1 < INF], 0),
            (p_all[self.attr_day < INF], self.attr_day[self.attr_day < INF], 0),
        ]
        for k in range(3):
            m = self.cr[:, k] < INF
            parts.append((p_all[m], self.cr[m, k], 0))
        explicit = np.array([e[:3] for e in self.explicit], dtype=np.int64).reshape(-1, 3)
        pairs = np.concatenate([x[0] for x in parts] + [explicit[:, 0]]).astype(np.int64)
        days = np.concatenate([x[1] for x in parts] + [explicit[:, 1]]).astype(np.int32)
        sd = np.concatenate(
            [np.full(len(x[0]), x[2], np.int8) for x in parts] + [explicit[:, 2].astype(np.int8)]
        )
        blank = np.zeros(len(pairs), dtype=bool)
        blank[len(pairs) - len(self.explicit) :] = [e[3] for e in self.explicit]
        # The planted duplicate is the attribute-change row of the chosen pairs.
        dup = np.isin(pairs, self.dup_change_pairs) & (days == self.attr_day[pairs])
        units, days, sd, blank, dup = self._expand(pairs, days, sd, blank, dup)
        files = cal.change_file_of(days)
        order = np.lexsort((units, days, files))
        self.ch_file, self.ch_unit, self.ch_day = files[order], units[order], days[order]
        self.ch_sd, self.ch_blank, self.ch_dup = sd[order], blank[order], dup[order]
        self.ch_id = 50_000_000 + np.cumsum(rng.integers(1, 5, len(order)))

    def enroll_rows(self) -> None:
        """ENRLMT rows: the phones of accounts enrolled in range, plus enrollment-only phones."""
        acc = self.pair_acc
        enrolled = (self.is_orig & ~self.acc_initial[acc]) | (
            self.is_special & (self.acc_special[acc] == SPECIAL_ENROLL_ONLY)
        )
        pairs = np.flatnonzero(enrolled)
        days = self.acc_enroll[acc[pairs]].astype(np.int32)
        dup = np.isin(pairs, self.dup_enroll_pairs)
        units, days, dup = self._expand(pairs, days, dup)
        files = self.cal.enroll_file_of(days)
        order = np.lexsort((units, days, files))
        self.en_file, self.en_unit = files[order], units[order]
        self.en_day, self.en_dup = days[order], dup[order]

    def consent_table(self) -> None:
        """Row 0 means no information; then each pair's events in order."""
        n_events = (self.cd < INF).sum(axis=1)
        self.cons_base = (1 + np.concatenate([[0], np.cumsum(n_events)[:-1]])).astype(np.int64)


def build_world(n_accounts: int, cal: Calendar, seed: int) -> World:
    """The whole simulated history for `n_accounts` accounts over the calendar."""
    b = _Builder(n_accounts, cal, seed)
    b.accounts()
    b.plan()
    b.consumers()
    b.pairs()
    b.histories()
    planted = b.planted()
    b.units()
    b.change_rows()
    b.enroll_rows()
    b.consent_table()

    rng = b.rng
    n_s = len(cal.snapshot_days)
    # Some snapshots arrive in parts; the last one always does, so a reader that drops a
    # part would wrongly see its pairs as hard-deleted.
    parts = np.where(rng.random(n_s) < 0.15, rng.integers(2, 5, n_s), 1)
    parts[-1] = 3
    dup_snapshot = n_s // 2
    parts[dup_snapshot] = 1
    dup_pairs = np.array(planted[EXACT_DUPLICATE_ROWS][: b.n_inst], dtype=np.int64)
    dup_units = np.flatnonzero(np.isin(b.unit_pair, dup_pairs))
    attrs = {key: np.stack([b.attr0[key], b.attr1[key]], axis=1) for key in b.attr0}
    return World(
        cal=cal,
        acc_number=b.acc_number,
        acc_agency=b.acc_agency,
        acc_enroll=b.acc_enroll,
        acc_initial=b.acc_initial,
        agencies=b.agencies,
        con_acc=b.con_acc,
        con_letter=b.con_letter,
        con_ssn=b.con_ssn,
        con_first=b.con_first,
        con_last=b.con_last,
        pair_acc=b.pair_acc,
        phone=b.phone,
        s0=b.s0,
        e0=b.e0,
        s1=b.s1,
        del_kind=b.del_kind,
        attr_day=b.attr_day,
        attrs=attrs,
        cd=b.cd,
        cf=b.cf,
        cr=b.cr,
        has_consent_date=b.has_date,
        cons_base=b.cons_base,
        unit_pair=b.unit_pair,
        unit_con=b.unit_con,
        unit_id=b.unit_id,
        unit_fmt_snapshot=b.unit_fmt_snapshot,
        unit_fmt_enroll=b.unit_fmt_enroll,
        unit_v1=b.unit_v1,
        unit_v2=b.unit_v2,
        ver_unit=b.ver_unit,
        ver_attrset=b.ver_attrset,
        ver_id=b.ver_id,
        ch_file=b.ch_file,
        ch_unit=b.ch_unit,
        ch_day=b.ch_day,
        ch_sd=b.ch_sd,
        ch_blank=b.ch_blank,
        ch_dup=b.ch_dup,
        ch_id=b.ch_id,
        en_file=b.en_file,
        en_unit=b.en_unit,
        en_day=b.en_day,
        en_dup=b.en_dup,
        snapshot_parts=parts,
        dup_snapshot=dup_snapshot,
        dup_units=dup_units,
        planted=planted,
    )
