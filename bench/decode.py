"""Time one segment's GET decode, step by step: `python -m bench.decode [--rounds N]`.

Answers whether joining the k data fragments ourselves would beat pyeclib's decode
(docs/performance.md): the checked decode, pyeclib's decode alone, the frame checks
alone, and a plain join of the payloads, each per 1 MiB segment of a 4+2 object.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from erasure.codec import Codec
from shardgate.memory import tune_allocator

SEGMENT = 1 << 20
PYECLIB_HEADER = 80  # bytes of liberasurecode's fragment header


def per_call_ms(work: Callable[[], object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        work()
    return (time.perf_counter() - start) / rounds * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args(argv).rounds
    tune_allocator()  # as every gateway process does: 1 MiB buffers stay off mmap
    codec = Codec(4, 2, "isa_l_rs_vand", SEGMENT)
    segment = os.urandom(SEGMENT)
    framed = codec.encode_segment(segment)
    data = {i: framed[i] for i in range(4)}
    payloads = [codec.unframe(framed[i], i) for i in range(4)]
    assert codec.decode_segment(data) == segment
    steps = [
        ("decode_segment (checks + pyeclib decode)", lambda: codec.decode_segment(data)),
        ("pyeclib decode of the 4 data fragments", lambda: codec._driver.decode(payloads)),
        ("frame checks of 4 fragments", lambda: [codec.unframe(framed[i], i)
                                                 for i in range(4)]),
        ("join of the 4 payloads", lambda: b"".join(p[PYECLIB_HEADER:] for p in payloads)),
    ]
    for name, work in steps:
        print(f"{name:45s} {per_call_ms(work, rounds):.3f} ms per MiB segment")


if __name__ == "__main__":
    main()
