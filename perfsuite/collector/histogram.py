"""Latency histograms: HdrHistogram in microseconds, 1 us to 1 hour, 3 significant digits.

``LatencyHistogram`` wraps ``hdrh.histogram.HdrHistogram`` (the standard, mergeable, portable format
whose encoding other HdrHistogram tools read) and never drops a value silently: values above one
hour are recorded as one hour and values below zero as zero, and both are counted in ``clamped``.

The module also exposes the bucket layout as numpy arrays (``counts_index``, ``HIGHEST_EQUIVALENT_US``,
``MEDIAN_EQUIVALENT_US``) and ``decode_many`` (a vectorised decoder of the standard encoding) so
that readers work on thousands of histograms at numpy speed without building one HdrHistogram
object per interval.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
"""Lowest discernible latency (microseconds)."""
HIGHEST_US = 3_600_000_000
"""Highest trackable latency: one hour in microseconds; larger values are clamped and counted."""
SIGNIFICANT_DIGITS = 3
"""Value precision: quantization is at most 1/1000 of the value (0.1%)."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def new_hdr() -> HdrHistogram:
    """An empty ``HdrHistogram`` with the collector's settings."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


_LAYOUT = new_hdr()
COUNTS_LEN: int = _LAYOUT.counts_len
"""Length of the counts array of every collector histogram."""
_UNIT_MAGNITUDE: int = _LAYOUT.unit_magnitude
_SUB_HALF_MAGNITUDE: int = _LAYOUT.sub_bucket_half_count_magnitude
_SUB_HALF_COUNT: int = _LAYOUT.sub_bucket_half_count
_SUB_COUNT: int = _LAYOUT.sub_bucket_count
_SUB_MASK: int = _LAYOUT.sub_bucket_mask


def _bucket_of(values: IntArray) -> IntArray:
    # bit length of (value | mask) is hdrh's 64 - clz(); exact in float64 since values < 2**53
    pow2ceiling = np.frexp((values | _SUB_MASK).astype(np.float64))[1].astype(np.int64)
    return pow2ceiling - _UNIT_MAGNITUDE - (_SUB_HALF_MAGNITUDE + 1)


def counts_index(values_us: IntArray) -> IntArray:
    """Counts-array index of each value (vectorised ``HdrHistogram._counts_index_for``).

    Values must already be within ``[0, HIGHEST_US]``.
    """
    bucket = _bucket_of(values_us)
    sub_bucket = values_us >> (bucket + _UNIT_MAGNITUDE)
    return ((bucket + 1) << _SUB_HALF_MAGNITUDE) + sub_bucket - _SUB_HALF_COUNT


def _value_from_index(index: IntArray) -> IntArray:
    bucket = (index >> _SUB_HALF_MAGNITUDE) - 1
    sub_bucket = (index & (_SUB_HALF_COUNT - 1)) + _SUB_HALF_COUNT
    first = bucket < 0
    sub_bucket = np.where(first, sub_bucket - _SUB_HALF_COUNT, sub_bucket)
    bucket = np.where(first, 0, bucket)
    return sub_bucket << (bucket + _UNIT_MAGNITUDE)


def _equivalent_range(values: IntArray) -> tuple[IntArray, IntArray]:
    bucket = _bucket_of(values)
    sub_bucket = values >> (bucket + _UNIT_MAGNITUDE)
    lowest = sub_bucket << (bucket + _UNIT_MAGNITUDE)
    size = np.left_shift(1, _UNIT_MAGNITUDE + bucket + (sub_bucket >= _SUB_COUNT))
    return lowest, size


_ALL_INDEXES = np.arange(COUNTS_LEN, dtype=np.int64)
_lowest, _size = _equivalent_range(_value_from_index(_ALL_INDEXES))
LOWEST_EQUIVALENT_US: IntArray = _lowest
"""Per counts index: the lowest value (us) that lands in that bucket."""
HIGHEST_EQUIVALENT_US: IntArray = _lowest + _size - 1
"""Per counts index: the highest value (us) that lands in that bucket (what percentiles report)."""
MEDIAN_EQUIVALENT_US: IntArray = _lowest + (_size >> 1)
"""Per counts index: the bucket's middle value (us), what HdrHistogram's mean uses."""
del _lowest, _size


def clamp_values(values_us: Sequence[float] | npt.NDArray[Any]) -> tuple[IntArray, int]:
    """Values as int64 microseconds within ``[0, HIGHEST_US]`` and how many had to be clamped.

    Floats are rounded to the nearest microsecond; NaN counts as clamped and becomes 0.
    """
    array = np.asarray(values_us)
    clamped = 0
    if array.dtype.kind == "f":
        bad = np.isnan(array)
        if bad.any():
            clamped += int(bad.sum())
            array = np.where(bad, 0.0, array)
        array = np.rint(np.clip(array, -1.0, float(HIGHEST_US) + 1.0))
    ints = array.astype(np.int64, copy=False)
    outside = (ints < 0) | (ints > HIGHEST_US)
    if outside.any():
        clamped += int(outside.sum())
        ints = np.clip(ints, 0, HIGHEST_US)
    return ints, clamped


def sparse_counts(values_us: Sequence[float] | npt.NDArray[Any]) -> tuple[IntArray, IntArray, int]:
    """``(indexes, counts, clamped)``: the values bucketed, indexes ascending, zero counts left out."""
    ints, clamped = clamp_values(values_us)
    if ints.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), clamped
    index = counts_index(ints)
    low = int(index.min())
    dense = np.bincount(index - low)
    nonzero = np.flatnonzero(dense)
    return nonzero + low, dense[nonzero].astype(np.int64), clamped


_CORRECTION_CHUNK = 1 << 20
"""Synthesized values made at a time by :meth:`LatencyHistogram.corrected_copy` (bounds memory)."""


class LatencyHistogram:
    """A mergeable latency histogram in microseconds that counts, never drops, out-of-range values."""

    __slots__ = ("clamped", "hdr")

    def __init__(self, hdr: HdrHistogram | None = None, clamped: int = 0) -> None:
        self.hdr: HdrHistogram = hdr if hdr is not None else new_hdr()
        """The underlying ``hdrh`` histogram (for HdrHistogram's own iterators and log tools)."""
        self.clamped: int = clamped
        """Values recorded at a range limit because they were outside 0 us .. one hour."""

    def record(self, value_us: float) -> None:
        """Record one latency (microseconds)."""
        value = round(value_us) if value_us == value_us else -1  # NaN -> clamped to 0
        if value < 0:
            value = 0
            self.clamped += 1
        elif value > HIGHEST_US:
            value = HIGHEST_US
            self.clamped += 1
        self.hdr.record_value(value)

    def record_corrected(self, value_us: float, expected_interval_us: int) -> None:
        """Record one latency and the samples coordinated omission hid (HDR's expected-interval fix).

        With a load generator that intends one request every ``expected_interval_us``, a response
        that took ``value_us`` also stalled the requests that should have been sent meanwhile; this
        records ``value_us``, ``value_us - expected_interval_us``, ... down to the interval.
        """
        value = round(value_us) if value_us == value_us else -1
        if value < 0 or value > HIGHEST_US:
            self.clamped += 1
            value = min(max(value, 0), HIGHEST_US)
        self.hdr.record_corrected_value(value, max(int(expected_interval_us), 0))

    def corrected_copy(self, expected_interval_us: int) -> LatencyHistogram:
        """A copy with HDR's post-hoc coordinated-omission correction
        (``copyCorrectedForCoordinatedOmission``): every recorded value ``v`` above the expected
        interval ``i`` also counts ``v - i``, ``v - 2i``, ... until one is at most ``i`` (as hdrh's
        ``record_corrected_value`` does) -- the requests a paced user would have sent while it waited."""
        indexes, counts = self.to_sparse()
        corrected = LatencyHistogram.from_sparse(indexes, counts, clamped=self.clamped)
        interval = int(expected_interval_us)
        if interval <= 0 or not indexes.size:
            return corrected
        # Each bucket's value v (its top, as HdrHistogram records it) also counts v - i, v - 2i, ...
        # until one is at most i (hdrh's loop): ceil(v / i) - 1 values, added at numpy speed, a
        # bounded number at a time.
        values = HIGHEST_EQUIVALENT_US[indexes]
        extra = np.maximum((values + interval - 1) // interval - 1, 0)
        wanted = np.flatnonzero(extra)
        start = 0
        while start < wanted.size:
            cumulative = np.cumsum(extra[wanted[start:]])
            stop = start + max(1, int(np.searchsorted(cumulative, _CORRECTION_CHUNK, side="right")))
            chosen = wanted[start:stop]
            repeats = extra[chosen]
            first = np.cumsum(repeats) - repeats
            step = np.arange(int(repeats.sum()), dtype=np.int64) - np.repeat(first, repeats) + 1
            missing = np.repeat(values[chosen], repeats) - step * interval
            weights = np.repeat(counts[chosen], repeats)
            index, sums = np.unique(counts_index(missing), return_inverse=True)
            corrected._add_sparse(index, np.bincount(sums, weights=weights).astype(np.int64))
            start = stop
        return corrected

    def record_many(self, values_us: Sequence[float] | npt.NDArray[Any]) -> None:
        """Record many latencies at numpy speed (the writer's flush path)."""
        index, counts, clamped = sparse_counts(values_us)
        if index.size:
            self._add_sparse(index, counts)
        self.clamped += clamped

    def _add_sparse(self, index: IntArray, counts: IntArray) -> None:
        view = np.ctypeslib.as_array(self.hdr.counts).view(np.int64)
        if index.size < 64:
            np.add.at(view, index, counts)
        else:
            _add_dense(view, index, counts)
        hdr = self.hdr
        hdr.total_count += int(counts.sum())
        hdr.min_value = min(hdr.min_value, int(LOWEST_EQUIVALENT_US[index[0]]))
        hdr.max_value = max(hdr.max_value, int(HIGHEST_EQUIVALENT_US[index[-1]]))

    @classmethod
    def from_sparse(cls, index: IntArray, counts: IntArray, clamped: int = 0) -> LatencyHistogram:
        """A histogram from ascending bucket indexes and their counts (see ``sparse_counts``)."""
        histogram = cls(clamped=clamped)
        if index.size:
            histogram._add_sparse(np.asarray(index, np.int64), np.asarray(counts, np.int64))
        return histogram

    def to_sparse(self) -> tuple[IntArray, IntArray]:
        """``(indexes, counts)`` of the non-empty buckets, indexes ascending."""
        view = np.ctypeslib.as_array(self.hdr.counts).view(np.int64)
        index = np.flatnonzero(view)
        return index.astype(np.int64), view[index].copy()

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value of ``other`` into this histogram."""
        self.hdr.add(other.hdr)
        self.clamped += other.clamped

    @property
    def count(self) -> int:
        """Number of recorded values."""
        return int(self.hdr.total_count)

    def percentile_us(self, percentile: float) -> int:
        """Value (us) at ``percentile`` (0-100): the highest value equivalent to the ranked sample."""
        return self.percentiles_us((percentile,))[percentile]

    def percentiles_us(self, percentiles: Iterable[float]) -> dict[float, int]:
        """Several percentiles, keyed by the requested percentile: HdrHistogram's rule (the sample of
        rank ``max(int(p * count / 100 + 0.5), 1)``, reported as its bucket's highest equivalent
        value; the lowest for percentile 0), at numpy speed."""
        wanted = list(percentiles)
        if not self.count:
            return dict.fromkeys(wanted, 0)
        index, counts = self.to_sparse()
        cumulative = np.cumsum(counts)
        total = int(cumulative[-1])
        values: dict[float, int] = {}
        for percentile in wanted:
            rank = max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)
            bucket = index[min(int(np.searchsorted(cumulative, rank, side="left")), index.size - 1)]
            values[percentile] = int(
                HIGHEST_EQUIVALENT_US[bucket] if percentile else LOWEST_EQUIVALENT_US[bucket]
            )
        return values

    @property
    def mean_us(self) -> float:
        """Mean (us), HdrHistogram's definition (bucket middles); 0.0 when empty."""
        return float(self.hdr.get_mean_value())

    @property
    def max_us(self) -> int:
        """Largest recorded value's bucket top (us); 0 when empty."""
        return int(self.hdr.get_max_value())

    @property
    def min_us(self) -> int:
        """Smallest recorded value's bucket bottom (us); 0 when empty."""
        return int(self.hdr.get_min_value()) if self.count else 0

    def encode(self) -> str:
        """The standard HdrHistogram V2 compressed, base64 encoding ("HISTF...")."""
        return str(self.hdr.encode().decode("ascii"))

    @classmethod
    def decode(cls, encoded: str | bytes) -> LatencyHistogram:
        """A histogram from ``encode()``'s output (``clamped`` is not part of the format: 0)."""
        index, counts = decode_sparse(encoded)
        return cls.from_sparse(index, counts)

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, max_us={self.max_us}, clamped={self.clamped})"


def _add_dense(view: IntArray, index: IntArray, counts: IntArray) -> None:
    low, high = int(index[0]), int(index[-1]) + 1
    view[low:high] += np.bincount(index - low, weights=counts, minlength=high - low).astype(np.int64)


_EXTERNAL_HEADER = struct.Struct(">II")
_PAYLOAD_HEADER = struct.Struct(">IIIIqqd")
_V2_ENCODING_COOKIE_BASE = 0x1C849303
_V2_COMPRESSION_COOKIE_BASE = 0x1C849304
_EMPTY = np.empty(0, np.int64)


def _varint_payload(encoded: str | bytes) -> bytes:
    """The LEB128/ZigZag counts stream of one encoded histogram, after checking its headers."""
    raw = base64.b64decode(encoded)
    if len(raw) < _EXTERNAL_HEADER.size:
        raise ValueError("encoded histogram too short")
    cookie, _ = _EXTERNAL_HEADER.unpack_from(raw)
    if cookie & ~0xF0 != _V2_COMPRESSION_COOKIE_BASE:
        raise ValueError(f"not a compressed HdrHistogram V2 encoding (cookie {cookie:#x})")
    data = zlib.decompress(raw[_EXTERNAL_HEADER.size :])
    cookie, payload_len, normalizing_offset, digits, lowest, highest, _ = _PAYLOAD_HEADER.unpack_from(data)
    if cookie & ~0xF0 != _V2_ENCODING_COOKIE_BASE:
        raise ValueError(f"not an HdrHistogram V2 payload (cookie {cookie:#x})")
    if (digits, lowest, highest) != (SIGNIFICANT_DIGITS, LOWEST_US, HIGHEST_US) or normalizing_offset:
        raise ValueError(
            f"histogram settings {(digits, lowest, highest)} differ from the collector's "
            f"{(SIGNIFICANT_DIGITS, LOWEST_US, HIGHEST_US)}"
        )
    return data[_PAYLOAD_HEADER.size : _PAYLOAD_HEADER.size + payload_len]


def decode_many(encoded: Sequence[str | bytes]) -> tuple[IntArray, IntArray, IntArray]:
    """``(which, indexes, counts)`` for many encoded collector histograms at once.

    ``which[i]`` is the position in ``encoded`` of entry i; entries come in input order, indexes
    ascending within each histogram, zero counts left out. The counts streams (LEB128 varints,
    ZigZag, negative values = runs of empty buckets) are decoded in one vectorised numpy pass, so
    a run's thousands of histograms cost a few microseconds each. ValueError for anything else
    than a V2 histogram with the collector's settings.
    """
    streams = [_varint_payload(item) for item in encoded]
    lengths = np.fromiter(map(len, streams), np.int64, len(streams))
    data = np.frombuffer(b"".join(streams), np.uint8)
    if data.size == 0:
        return _EMPTY, _EMPTY, _EMPTY
    stream_end = np.cumsum(lengths)
    if (data[stream_end[lengths > 0] - 1] >= 0x80).any():
        raise ValueError("truncated histogram counts stream")
    ends = np.flatnonzero(data < 0x80)  # last byte of every varint
    tokens_before_end = np.searchsorted(ends, stream_end, side="left")
    tokens_per_stream = np.diff(tokens_before_end, prepend=0)
    token_length = np.diff(ends, prepend=-1)
    zigzag = data[ends].astype(np.int64)
    multi = np.flatnonzero(token_length > 1)  # rare: counts >= 64 or runs of > 64 empty buckets
    if multi.size:
        lengths_m = token_length[multi]
        if lengths_m.max() > 8:  # a count >= 2**55 in one bucket: not a latency histogram
            raise ValueError("histogram count too large to decode")
        ends_m = ends[multi]
        value_m = zigzag[multi] << (7 * (lengths_m - 1))
        for back in range(1, int(lengths_m.max())):
            longer = lengths_m > back
            low_bits = (data[ends_m[longer] - back] & 0x7F).astype(np.int64)
            value_m[longer] += low_bits << (7 * (lengths_m[longer] - 1 - back))
        zigzag[multi] = value_m
    values = (zigzag >> 1) ^ -(zigzag & 1)
    step = np.where(values < 0, -values, 1)
    position = np.cumsum(step) - step
    first_token = tokens_before_end - tokens_per_stream
    has_tokens = tokens_per_stream > 0
    base = np.zeros(len(streams), np.int64)
    base[has_tokens] = position[first_token[has_tokens]]
    index = position - np.repeat(base, tokens_per_stream)
    which = np.repeat(np.arange(len(streams), dtype=np.int64), tokens_per_stream)
    keep = values > 0
    if keep.any() and index[keep].max() >= COUNTS_LEN:
        raise ValueError("histogram bucket index out of range")
    return which[keep], index[keep], values[keep]


def decode_sparse(encoded: str | bytes) -> tuple[IntArray, IntArray]:
    """``(indexes, counts)`` of one encoded collector histogram (see ``decode_many``)."""
    _, index, counts = decode_many([encoded])
    return index, counts


__all__ = [
    "COUNTS_LEN",
    "HIGHEST_EQUIVALENT_US",
    "HIGHEST_US",
    "LOWEST_EQUIVALENT_US",
    "LOWEST_US",
    "MEDIAN_EQUIVALENT_US",
    "SIGNIFICANT_DIGITS",
    "LatencyHistogram",
    "clamp_values",
    "counts_index",
    "decode_many",
    "decode_sparse",
    "new_hdr",
    "sparse_counts",
]
