"""The compliance report's page as a person sees it: opened from its file in headless Chromium
(Debian's, driven by Playwright), offline, and looked at.

The page is built from a small made-up book (no Spark, no warehouse: the graph test in
test_pipeline.py builds the real one), with every chart drawn.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from phone_compliance import schema
from phone_compliance.report import content, page

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (.ci/run installs it); Playwright's is not used
VIEWPORT = {"width": 1100, "height": 900}
WHITE = (255, 255, 255)


def _month_ends(first: date, count: int) -> list[date]:
    ends, year, month = [], first.year, first.month
    for _ in range(count):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        ends.append(date(year, month, 1) - timedelta(days=1))
    return ends


def book(months: int = 36, seed: int = 7) -> content.Aggregates:
    """Aggregates of a made-up book growing over `months` monthly snapshots."""
    rng = random.Random(seed)
    ends = _month_ends(date(2021, 1, 1), months)
    by_month, pairs = [], {r: 0 for r in schema.DECISION_REASONS if r != schema.NOT_FOUND}
    for end in ends:
        pairs[schema.ALLOWED] += rng.randint(150, 300)
        for reason in (schema.NOT_CLIENT_SOURCED, schema.DELETED, schema.CONSENT_WITHDRAWN):
            pairs[reason] += rng.randint(5, 60)
        by_month += [{"month_end": end, "reason": r, "pairs": n} for r, n in pairs.items()]
    deletions = [
        {"snapshot_date": end, "delete_type": kind, "pairs": rng.randint(1, 40)}
        for end in ends
        for kind in (schema.HARD_DELETE, schema.SOFT_DELETE)
    ]
    withdrawals = [{"month": end.replace(day=1), "withdrawals": rng.randint(0, 25)} for end in ends]
    rejects = [
        {"file_date": end - timedelta(days=day), "kind": "row", "reason": reason, "rejects": n}
        for end in ends
        for day in (3, 17)
        for reason, n in ((schema.REJECT_PHONE, rng.randint(0, 9)), (schema.REJECT_DATE, 2))
    ] + [{"file_date": ends[5], "kind": "file", "reason": schema.FILE_BAD_GZIP, "rejects": 1}]
    published = datetime(2023, 12, 31, 6, 30, tzinfo=UTC)
    changed = [
        (schema.ALLOWED, schema.CONSENT_WITHDRAWN, 41),
        (schema.ALLOWED, schema.DELETED, 17),
        (schema.CONSENT_WITHDRAWN, schema.ALLOWED, 6),
        (schema.ALLOWED, schema.ALLOWED, 26),  # lineage only
    ]
    return content.Aggregates(
        reasons_by_month_end=by_month,
        deletions=deletions,
        snapshots=ends,
        consent_withdrawals=withdrawals,
        rejects=rejects,
        last_publication=[
            {
                "gold_version": 42,
                "published_at": published,
                "old_reason": old,
                "new_reason": new,
                "old_can_send_sms": old == schema.ALLOWED,
                "new_can_send_sms": new == schema.ALLOWED,
                "flipped": (old == schema.ALLOWED) != (new == schema.ALLOWED),
                "pairs": n,
            }
            for old, new, n in changed
        ],
    )


def _share_not_white(image: Image.Image) -> float:
    pixels = np.asarray(image.convert("RGB"))
    return float((pixels != WHITE).any(axis=-1).mean())


def _saturated(image: Image.Image) -> int:
    """Pixels of a clear colour (chart fills), not greys of text and axes."""
    hsv = np.asarray(image.convert("HSV")).astype(int)
    return int(((hsv[..., 1] > 80) & (hsv[..., 2] > 60)).sum())


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Chromium missing: apt-get install -y chromium (as .ci/run does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def test_the_report_page_shows_every_chart_and_its_numbers_offline(browser, tmp_path):
    report = content.build(book(), "s3://bank-warehouse/prod", 42, datetime.now(UTC))
    html = tmp_path / "compliance.html"
    html.write_text(page.html(report), encoding="utf-8")

    view = browser.new_page(viewport=VIEWPORT)
    fetched: list[str] = []
    view.on("request", lambda r: fetched.append(r.url))
    view.goto(html.as_uri(), wait_until="load")
    shot = tmp_path / "report.png"
    view.screenshot(path=str(shot), full_page=True)

    # Opens offline: the page itself and its inline images, nothing else.
    assert {u.split(":")[0] for u in fetched} <= {"file", "data"}, fetched
    # The headings a reader looks for, in order, and what the page describes.
    assert view.locator("h1").inner_text() == report.title
    titles = view.locator("h2").all_inner_texts()
    assert titles == ["Decisions now", *[s.title for s in report.sections]]
    about = view.locator("dl.about").inner_text()
    assert "s3://bank-warehouse/prod" in about and "42" in about
    # Every chart loaded, decoded and laid out at a size one can read, with its caption and
    # numbers beside it.
    images = view.locator("section figure img")
    assert images.count() == len(report.sections) == 5
    for i in range(images.count()):
        img = images.nth(i)
        assert img.is_visible()
        assert img.evaluate("i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0")
        box = img.bounding_box()
        assert box and box["width"] >= 600 and box["height"] >= 200, box
    assert view.locator("figcaption").count() == 5
    assert view.locator("section .numbers table").count() == 6  # the summary and each chart's
    # The screenshot is not blank, and each chart's area holds drawn, coloured marks.
    screenshot = Image.open(shot)
    assert screenshot.width >= VIEWPORT["width"] and screenshot.height > 5 * 300
    assert _share_not_white(screenshot) > 0.05
    for i in range(images.count()):
        box = images.nth(i).bounding_box()
        area = screenshot.crop(
            (
                int(box["x"]),
                int(box["y"]),
                int(box["x"] + box["width"]),
                int(box["y"] + box["height"]),
            )
        )
        assert _share_not_white(area) > 0.03, f"chart {i} looks empty"
        assert _saturated(area) > 500, f"chart {i} has no coloured marks"


def test_the_report_page_of_an_empty_warehouse_says_so_and_draws_no_chart(browser, tmp_path):
    report = content.build(content.Aggregates(), "/srv/warehouse", None, datetime.now(UTC))
    html = tmp_path / "compliance.html"
    html.write_text(page.html(report), encoding="utf-8")
    view = browser.new_page(viewport=VIEWPORT)
    view.goto(html.as_uri(), wait_until="load")
    view.screenshot(path=str(tmp_path / "empty.png"), full_page=True)
    assert view.locator("img").count() == 0
    assert view.locator("p.empty").count() == 6  # "Decisions now" and each chart
    assert "no publication yet" in view.locator("dl.about").inner_text()
    assert content.NO_PUBLICATION in view.locator("#last_publication_flips").inner_text()
