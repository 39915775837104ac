"""Erasure coding for shardgate: pure functions over bytes, with no I/O."""

from erasure.codec import Codec
from erasure.errors import ErasureError, FragmentCorrupt, NotEnoughFragments, RangeNotSatisfiable
from erasure.framing import CRC_SIZE, archive_seed, check_frame, frame
from erasure.layout import ArchiveLayout
from erasure.params import MAX_SEGMENT_SIZE, SUPPORTED_EC_TYPES
from erasure.ranges import (
    SegmentSlice,
    SegmentSpan,
    iter_segment_slices,
    resolve_range,
    segment_span,
)
from erasure.segmenter import Segmenter
from erasure.slices import SLICE_OVERHEAD, SliceSpec, check_slice, cut_slice

__all__ = [
    "CRC_SIZE",
    "SLICE_OVERHEAD",
    "SliceSpec",
    "check_slice",
    "cut_slice",
    "archive_seed",
    "MAX_SEGMENT_SIZE",
    "SUPPORTED_EC_TYPES",
    "ArchiveLayout",
    "Codec",
    "ErasureError",
    "FragmentCorrupt",
    "NotEnoughFragments",
    "RangeNotSatisfiable",
    "SegmentSlice",
    "SegmentSpan",
    "Segmenter",
    "check_frame",
    "frame",
    "iter_segment_slices",
    "resolve_range",
    "segment_span",
]
