"""Collector writer, reader, histograms, spill and runs, against a real private Redis."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import gevent
import numpy as np
import pytest
import redis

from perfsuite.collect import summary_of
from perfsuite.collector import (
    HIGHEST_US,
    CollectorReader,
    CollectorWriter,
    HistogramTable,
    LatencyHistogram,
    create_run,
    finish_run,
    new_run_id,
    replay_spill,
)
from perfsuite.collector.histogram import COUNTS_LEN, counts_index, decode_many, decode_sparse, new_hdr
from perfsuite.collector.keys import batches_key, meta_key, run_keys, writers_key
from perfsuite.embedded import start_redis
from perfsuite.errors import ConfigError

PREFIX = "pstest"


def exact_percentile(values: np.ndarray, percentile: float) -> int:
    """The recorded value HdrHistogram ranks at ``percentile`` (its rank rule on the sorted values)."""
    ordered = np.sort(values)
    rank = max(1, int(percentile * len(ordered) / 100 + 0.5))
    return int(ordered[rank - 1])


def assert_within_hdr_precision(reported_ms: float, exact_us: int) -> None:
    """HDR reports the top of the exact value's bucket: never below it, at most 0.1% + 1 us above."""
    reported_us = round(reported_ms * 1000)  # the frames hold whole microseconds as ms floats
    assert exact_us <= reported_us <= exact_us * 1.001 + 1, (reported_us, exact_us)


def make_writer(redis_url: str, run_id: str, spill_dir: Path, **kwargs: object) -> CollectorWriter:
    """A writer whose flushes the test drives itself (no flusher greenlet)."""
    options: dict = {"key_prefix": PREFIX, "spill_dir": spill_dir, "start": False, **kwargs}
    return CollectorWriter(redis_url, run_id, **options)


def test_known_distribution_round_trips_exactly(redis_url: str, tmp_path: Path) -> None:
    """10,000 latencies over 10 s come back with exact counts per outcome and second, and P50/P95/P99
    equal to the exact percentiles within HDR precision, overall and per endpoint."""
    rng = np.random.default_rng(7)
    latencies = rng.lognormal(mean=9.0, sigma=0.8, size=10_000).astype(np.int64)
    outcomes = np.array(["success", "rejected", "backpressure", "failure"])[rng.integers(0, 4, 10_000) % 4]
    names = np.where(np.arange(10_000) % 3 == 0, "/b", "/a")
    start = int(time.time()) // 10 * 10 - 60  # on a multiple of 10 s: two whole 5-s intervals
    at = start + np.arange(10_000) / 1000.0
    run_id = new_run_id()
    create_run(redis_url, PREFIX, run_id, "webhook", "unit", "http://target", "{}")
    writer = make_writer(redis_url, run_id, tmp_path)
    for i in range(10_000):
        error = "HTTP 500" if outcomes[i] == "failure" else None
        writer.record(
            "POST", str(names[i]), int(latencies[i]), outcome=str(outcomes[i]), error=error, at_s=float(at[i])
        )
    assert writer.close() is True
    finish_run(redis_url, PREFIX, run_id, "finished", locust_total_requests=10_000)

    run = CollectorReader(redis_url, PREFIX).load(run_id)
    total = run.total().iloc[0]
    assert total["count"] == 10_000
    for outcome in ("success", "rejected", "backpressure", "failure"):
        assert total[outcome] == int((outcomes == outcome).sum())
    answered = int(((outcomes == "success") | (outcomes == "rejected")).sum())
    assert total["success_rate"] == answered / 10_000  # the one definition: rejections are answers
    assert total["success_rate"] == summary_of(run).success_rate
    for percentile in (50, 95, 99):
        assert_within_hdr_precision(total[f"p{percentile}_ms"], exact_percentile(latencies, percentile))
    summary = run.summary().set_index("name").to_dict("index")
    for name in ("/a", "/b"):
        mine = latencies[names == name]
        assert summary[name]["count"] == len(mine)
        assert_within_hdr_precision(summary[name]["p99_ms"], exact_percentile(mine, 99))
        assert_within_hdr_precision(summary[name]["max_ms"], int(mine.max()))
    series = run.timeseries()
    assert list(series["second"]) == list(range(start, start + 10))
    assert list(series["count"]) == [1000] * 10
    first_second = latencies[:1000]
    assert_within_hdr_precision(series["p95_ms"].iloc[0], exact_percentile(first_second, 95))
    per_endpoint = run.timeseries(5, per_endpoint=True)
    assert len(per_endpoint) == 4 and per_endpoint["count"].sum() == 10_000
    coarse = CollectorReader(redis_url, PREFIX).load(run_id, resolution_s=5)
    assert list(coarse.timeseries()["count"]) == list(run.timeseries(5)["count"])
    assert coarse.total().iloc[0]["p99_ms"] == total["p99_ms"]
    reasons = run.failure_reasons()
    assert reasons["count"].sum() == int((outcomes == "failure").sum())
    assert set(reasons["reason"]) == {"HTTP 500"}
    assert run.complete and run.matches_locust is True
    assert run.histogram(name="/a").count == int((names == "/a").sum())


def test_histogram_percentiles_equal_hdrhistograms_own(redis_url: str, tmp_path: Path) -> None:
    """The vectorised statistics of many histograms equal what HdrHistogram computes for each one."""
    rng = np.random.default_rng(11)
    groups = rng.integers(0, 20, 30_000)
    values = rng.lognormal(8.0, 2.0, 30_000).astype(np.int64).clip(0, HIGHEST_US)
    table = HistogramTable.from_entries(groups, counts_index(values), np.ones(30_000, np.int64), 21)
    stats = table.stats((50.0, 99.0, 99.9))
    assert stats.count[20] == 0 and np.isnan(stats.percentiles_us[50.0][20])
    for group in range(20):
        reference = new_hdr()
        for value in values[groups == group]:
            reference.record_value(int(value))
        assert stats.count[group] == reference.total_count
        for percentile in (50.0, 99.0, 99.9):
            assert stats.percentiles_us[percentile][group] == reference.get_value_at_percentile(percentile)
        assert stats.max_us[group] == reference.get_max_value()
        assert stats.mean_us[group] == pytest.approx(reference.get_mean_value(), rel=1e-9)


def test_encoding_is_standard_hdrhistogram() -> None:
    """Histograms are stored in HdrHistogram's own encoding: hdrh decodes them, and decode_sparse
    reads hdrh's encodings, bucket for bucket."""
    histogram = LatencyHistogram()
    histogram.record_many(np.arange(0, 5_000_000, 997))
    encoded = histogram.encode()
    from hdrh.histogram import HdrHistogram

    decoded = HdrHistogram.decode(encoded)
    assert decoded.total_count == histogram.count
    assert decoded.get_value_at_percentile(90) == histogram.percentile_us(90)
    index, counts = decode_sparse(encoded)
    assert counts.sum() == histogram.count and index.max() < COUNTS_LEN
    again = LatencyHistogram.decode(encoded)
    assert again.percentiles_us([50, 99]) == histogram.percentiles_us([50, 99])


def test_vectorised_decoding_equals_the_recorded_buckets() -> None:
    """decode_many reads back exactly the buckets recorded, for empty histograms, huge counts and
    sparse and dense histograms alike, and rejects foreign encodings."""
    rng = np.random.default_rng(5)
    histograms = [LatencyHistogram()]
    for k in range(60):
        values = rng.lognormal(rng.uniform(1, 15), rng.uniform(0.1, 3), int(rng.integers(1, 2000)))
        histogram = LatencyHistogram()
        histogram.record_many(values)
        histogram.hdr.record_value(int(values[0]), count=10 ** (k % 16))  # counts of 1 to 8 varint bytes
        histograms.append(histogram)
    which, index, counts = decode_many([h.encode() for h in histograms])
    for position, histogram in enumerate(histograms):
        expected_index, expected_counts = histogram.to_sparse()
        assert np.array_equal(index[which == position], expected_index)
        assert np.array_equal(counts[which == position], expected_counts)
    from hdrh.histogram import HdrHistogram

    with pytest.raises(ValueError, match="settings"):
        decode_many([HdrHistogram(1, 60_000_000, 2).encode()])


def test_out_of_range_values_are_clamped_and_counted(redis_url: str, tmp_path: Path) -> None:
    """Latencies above one hour or below zero are recorded at the limit and counted, never dropped."""
    run_id = new_run_id()
    writer = make_writer(redis_url, run_id, tmp_path)
    at = time.time() - 10
    for latency_us in (5_000, HIGHEST_US * 3, -20, float("nan"), 7_000):
        writer.record("GET", "/x", latency_us, at_s=at)
    writer.close()
    run = CollectorReader(redis_url, PREFIX).load(run_id)
    assert run.requests == 5
    assert run.clamped == 3
    assert run.histogram().count == 5
    assert round(run.total().iloc[0]["max_ms"] * 1000) >= HIGHEST_US
    hist = LatencyHistogram()
    hist.record(HIGHEST_US + 1)
    hist.record_corrected(10_000, 1_000)
    assert hist.clamped == 1 and hist.count == 1 + 10


def test_marks_and_timings_come_back(redis_url: str, tmp_path: Path) -> None:
    """Marks (stage, fault windows, samples) and extra timing metrics are stored and read back."""
    run_id = new_run_id()
    writer = make_writer(redis_url, run_id, tmp_path)
    at = time.time() - 30
    writer.mark("stage", at_s=at, stage=1, users=10)
    writer.mark("fault_start", at_s=at + 1, fault="redis-pause")
    for i in range(100):
        writer.record(
            "POST", "/w", 2_000 + i, timings_us={"ttfb": 1_000 + i, "server.queue": 50}, at_s=at + 2
        )
    writer.mark("fault_end", at_s=at + 3, fault="redis-pause")
    writer.close()
    run = CollectorReader(redis_url, PREFIX).load(run_id)
    marks = run.marks()
    assert list(marks["kind"]) == ["stage", "fault_start", "fault_end"]
    assert marks.loc[0, "users"] == 10 and marks.loc[1, "fault"] == "redis-pause"
    assert list(run.marks("fault_end")["at"]) == [pytest.approx(at + 3)]
    ttfb = run.metric_summary("ttfb").iloc[0]
    assert ttfb["count"] == 100 and ttfb["p50_ms"] == pytest.approx(1.05, abs=0.002)
    assert set(run.metrics) == {"rt", "ttfb", "server.queue"}
    with pytest.raises(ConfigError, match="connect"):
        run.metric_summary("connect")


def test_rates_divide_by_the_exact_time_the_requests_spanned(redis_url: str, tmp_path: Path) -> None:
    """100 requests from 0.2 s into one second to 0.2 s into the third (each taking 0.1 s): the
    rate divides by the 2.1 s from the first start to the last end, not by the 3 whole seconds the
    data touches (which read a 20 s run as 21 s: the rate 4-5% low)."""
    run_id = new_run_id()
    writer = make_writer(redis_url, run_id, tmp_path)
    at = float(int(time.time()) - 30) + 0.3  # the first request ends here, started 0.1 s earlier
    for i in range(100):
        writer.record("POST", "/w", 100_000, at_s=at + i * 2.0 / 99)
    writer.close()
    run = CollectorReader(redis_url, PREFIX).load(run_id)
    assert run.duration_s == 3
    assert run.elapsed_s == pytest.approx(2.1, abs=1e-3)
    assert run.total().iloc[0]["rps"] == pytest.approx(100 / 2.1, rel=1e-3)


def test_late_records_and_folding_are_not_lost(redis_url: str, tmp_path: Path) -> None:
    """A record for a second already flushed, and more values per cell than the fold threshold,
    still all count."""
    run_id = new_run_id()
    writer = make_writer(redis_url, run_id, tmp_path)
    at = time.time() - 20
    values = np.random.default_rng(3).integers(100, 100_000, 40_000)
    for value in values:
        writer.record("GET", "/hot", int(value), at_s=at)
    assert writer.flush() is True
    writer.record("GET", "/hot", 123, at_s=at)
    writer.close()
    run = CollectorReader(redis_url, PREFIX).load(run_id)
    assert run.requests == 40_001
    assert len(run.cells) == 1
    everything = np.append(values, 123)
    assert_within_hdr_precision(run.total().iloc[0]["p99_ms"], exact_percentile(everything, 99))
    assert run.complete


def test_flusher_greenlet_writes_while_running(redis_url: str, tmp_path: Path) -> None:
    """With its flusher running, a writer's closed seconds reach Redis before close()."""
    run_id = new_run_id()
    writer = CollectorWriter(redis_url, run_id, key_prefix=PREFIX, spill_dir=tmp_path, flush_interval_s=0.05)
    writer.record("GET", "/x", 1_000, at_s=time.time() - 5)
    gevent.sleep(0.3)
    assert writer.batches_written >= 1
    assert redis.Redis.from_url(redis_url).hlen(batches_key(PREFIX, run_id)) >= 1
    writer.close()


def test_never_loses_data_across_a_redis_outage(tmp_path: Path) -> None:
    """Redis stops mid-run: batches stay in memory, then spill past the bound; when a Redis comes
    back on the same port everything arrives exactly once and the run is complete."""
    server = start_redis(data_dir=tmp_path / "redis")
    port = int(server.extra["port"])
    spill_dir = tmp_path / "spill"
    run_id = new_run_id()
    try:
        writer = make_writer(server.url, run_id, spill_dir, max_pending_batches=2, close_timeout_s=5.0)
        base = time.time() - 100
        expected = 0
        for second in range(3):
            for i in range(50):
                writer.record("GET", "/before", 1_000 + i, at_s=base + second)
                expected += 1
            assert writer.flush() is True
        server.stop()
        for second in range(3, 10):
            for i in range(50):
                writer.record("GET", "/during", 2_000 + i, at_s=base + second)
                expected += 1
            writer.mark("sample", at_s=base + second, cpu=0.5)
            assert writer.flush() is False
        assert writer.batches_spilled >= 5
        assert writer.spill_path.exists()
        assert writer.pending == 7
        server = start_redis(data_dir=tmp_path / "redis", port=port)
        for i in range(50):
            writer.record("GET", "/after", 3_000 + i, at_s=base + 10)
            expected += 1
        assert writer.close() is True
        assert not writer.spill_path.exists()
        run = CollectorReader(server.url, PREFIX).load(run_id)
        assert run.requests == expected == 550
        counts = run.summary().set_index("name")["count"].to_dict()
        assert counts == {"/before": 150, "/during": 350, "/after": 50}
        assert len(run.marks("sample")) == 7
        assert run.complete, run.problems
        assert run.writers().iloc[0]["spilled"] == writer.batches_spilled
    finally:
        server.stop()


def test_spilled_batches_replay_once_even_when_written_twice(redis_url: str, tmp_path: Path) -> None:
    """With Redis unreachable at close everything lands in the spill file; replaying it (twice, as a
    retry would) counts each request once and completes the run."""
    unreachable = "redis://127.0.0.1:1/0"
    run_id = new_run_id()
    writer = make_writer(unreachable, run_id, tmp_path, max_pending_batches=0)
    at = time.time() - 50
    for i in range(300):
        writer.record("GET", "/x", 1_000 + i, at_s=at + i // 100)
        if i % 100 == 99:
            writer.flush()
    assert writer.close(timeout_s=0.2) is False
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(writer.spill_path, copy / writer.spill_path.name)
    first = replay_spill(redis_url, tmp_path)
    assert first.files == 1 and first.entries == 5  # open record, 3 batches, closed record
    assert not writer.spill_path.exists()
    replay_spill(redis_url, copy)
    run = CollectorReader(redis_url, PREFIX).load(run_id)
    assert run.requests == 300
    assert run.complete, run.problems


def test_missing_batch_makes_the_run_incomplete(redis_url: str, tmp_path: Path) -> None:
    """Completeness compares each writer's declared totals with the data found."""
    run_id = new_run_id()
    writer = make_writer(redis_url, run_id, tmp_path)
    at = time.time() - 50
    for second in range(3):
        writer.record("GET", "/x", 1_000, at_s=at + second)
        writer.flush()
    writer.close()
    client = redis.Redis.from_url(redis_url)
    first_field = sorted(client.hkeys(batches_key(PREFIX, run_id)))[0]
    client.hdel(batches_key(PREFIX, run_id), first_field)
    run = CollectorReader(redis_url, PREFIX).load(run_id)
    assert not run.complete
    assert any("declared 3 batches, found 2" in problem for problem in run.problems)
    client.hdel(writers_key(PREFIX, run_id), writer.writer_id)
    run = CollectorReader(redis_url, PREFIX).load(run_id)
    assert any("no writer record" in problem for problem in run.problems)


def test_runs_are_listed_newest_first_and_expire(redis_url: str) -> None:
    """Runs list newest first with their status and request totals; retention is set on every key;
    unknown ids and duplicate ids are errors that name the id."""
    client = redis.Redis.from_url(redis_url)
    older, newer = "20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"
    from datetime import UTC, datetime

    create_run(redis_url, PREFIX, older, "redis", "s", "h", "{}", started_at=datetime(2026, 1, 1, tzinfo=UTC))
    create_run(
        redis_url, PREFIX, newer, "webhook", "s", "h", "{}", started_at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    finish_run(redis_url, PREFIX, older, "finished", retention_s=120)
    reader = CollectorReader(redis_url, PREFIX)
    runs = reader.list_runs()
    assert list(runs["run_id"]) == [newer, older]
    assert list(runs["status"]) == ["running", "finished"]
    assert reader.latest_run_id() == newer
    assert reader.latest_run_id("redis") == older
    assert reader.latest_run_id("capacity") is None
    assert 0 < client.ttl(meta_key(PREFIX, older)) <= 120
    with pytest.raises(ConfigError, match="already exists"):
        create_run(redis_url, PREFIX, older, "redis", "s", "h", "{}")
    with pytest.raises(ConfigError, match="nosuchrun"):
        reader.load("nosuchrun")
    with pytest.raises(ConfigError, match="nosuchrun"):
        reader.meta("nosuchrun")
    with pytest.raises(ConfigError, match="bogus"):
        finish_run(redis_url, PREFIX, older, "bogus")
    client.delete(*run_keys(PREFIX, older))
    assert list(reader.list_runs()["run_id"]) == [newer]


def test_user_mistakes_raise_config_errors(redis_url: str, tmp_path: Path) -> None:
    """A bad outcome, run id or parameter fails with a message naming the value."""
    writer = make_writer(redis_url, new_run_id(), tmp_path)
    with pytest.raises(ConfigError, match="'teapot'"):
        writer.record("GET", "/x", 1, outcome="teapot")
    with pytest.raises(ConfigError, match="bad id"):
        CollectorWriter(redis_url, "bad id", spill_dir=tmp_path, start=False)
    with pytest.raises(ConfigError, match="max_pending_batches"):
        CollectorWriter(redis_url, "ok-id", spill_dir=tmp_path, max_pending_batches=-1, start=False)
    with pytest.raises(ConfigError, match="decode_responses"):
        CollectorWriter(redis.Redis.from_url(redis_url, decode_responses=True), "ok-id", start=False)
    writer.close()


def test_raw_rows_are_sampled_and_capped(redis_url: str, tmp_path: Path) -> None:
    """Raw per-request rows are kept only when asked for, and never more than the cap."""
    run_id = new_run_id()
    writer = make_writer(redis_url, run_id, tmp_path, raw_sample_rate=1.0, raw_rows_cap=25)
    at = time.time() - 10
    for i in range(100):
        writer.record("GET", "/x", 1_000 + i, outcome="success", response_length=3, at_s=at)
    writer.close()
    rows = CollectorReader(redis_url, PREFIX).load(run_id).rows()
    assert len(rows) == 25
    assert list(rows["latency_us"][:3]) == [1_000, 1_001, 1_002]


def test_numpy_percentiles_and_correction_equal_hdrhistograms_own() -> None:
    """The numpy paths the reports and the live metrics use give HdrHistogram's own answers: every
    percentile as hdrh ranks it, and the expected-interval correction bucket for bucket as hdrh's
    ``record_corrected_value`` records it (values from 1 us to minutes, several intervals)."""
    import random

    from perfsuite.collector.histogram import HIGHEST_EQUIVALENT_US

    rng = random.Random(11)
    for scale_us, interval_us in ((300, 97), (5_000, 1_000), (50_000, 12_345), (2_000_000, 100_000)):
        measured = LatencyHistogram()
        measured.record_many([rng.expovariate(1 / scale_us) for _ in range(3000)])
        percentiles = [0, 0.1, 25, 50, 90, 95, 99, 99.9, 100]
        assert measured.percentiles_us(percentiles) == measured.hdr.get_percentile_to_value_dict(percentiles)
        reference = LatencyHistogram()
        indexes, counts = measured.to_sparse()
        for index, count in zip(indexes.tolist(), counts.tolist(), strict=True):
            reference.hdr.record_corrected_value(int(HIGHEST_EQUIVALENT_US[index]), interval_us, count)
        corrected = measured.corrected_copy(interval_us)
        got, want = corrected.to_sparse(), reference.to_sparse()
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
        assert corrected.count > measured.count
