"""The rate and ETA a progress display shows for a bulk operation."""

from datetime import UTC, datetime, timedelta

from verenigingen.accounts.ports import TrackerView
from verenigingen.accounts.trackers import speed

START = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)  # a minute before the clocks go forward in Europe


def figures(view: TrackerView, now: datetime) -> tuple[float, int | None]:
    result = speed(view, now)
    return result.per_minute, result.eta_seconds


def tracker(processed: int, total: int = 100, started: datetime | None = START) -> TrackerView:
    return TrackerView(
        name="BOT-1",
        operation_type="Account Creation",
        source_import=None,
        status="Processing",
        total_records=total,
        processed_records=processed,
        successful_records=processed,
        failed_records=0,
        current_batch=1,
        total_batches=2,
        batch_size=50,
        requested_by="admin@example.org",
        started_at=started,
        completed_at=None,
        error_summary=None,
    )


def test_no_rate_before_a_member_is_processed():
    assert figures(tracker(0), START + timedelta(minutes=5)) == (0.0, None)
    assert figures(tracker(10, started=None), START) == (0.0, None)


def test_rate_and_time_left_at_that_rate():
    result = speed(tracker(30), START + timedelta(minutes=1))
    assert result.per_minute == 30.0
    assert result.eta_seconds == 140  # 70 members at half a member a second


def test_nothing_left_when_every_member_is_processed():
    assert speed(tracker(100), START + timedelta(minutes=4)).eta_seconds == 0


def test_a_clock_just_behind_the_start_counts_as_one_second():
    assert figures(tracker(1), START - timedelta(seconds=3)) == (60.0, 99)
