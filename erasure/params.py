"""Which erasure-code parameters we accept, and why the others are refused.

Every object must survive the loss of any `m` fragments (docs/durability.md), so only codes
that are MDS (any k of the k+m fragments rebuild the data) for the chosen k, m pass.
"""

from __future__ import annotations

from pyeclib.ec_iface import ALL_EC_TYPES, VALID_EC_TYPES

MAX_SEGMENT_SIZE = 64 << 20
"""A segment is held in memory several times over while it is encoded; 64 MiB is plenty."""

MAX_FRAGMENTS = 256
"""k + m: every Reed-Solomon backend here works in GF(2^8), so at most 256 fragments."""

# Reed-Solomon backends that are MDS. The others pyeclib offers are refused on purpose:
# flat_xor_hd_3/4 tolerate only 2/3 lost fragments whatever m is, isa_l_rs_lrc is a
# locally repairable code (not MDS), shss and libphazr are proprietary plugins, and the
# jerasure backends are deprecated by pyeclib (FutureWarning) and absent from its wheels.
_MDS_EC_TYPES = ("isa_l_rs_vand", "isa_l_rs_cauchy", "isa_l_rs_vand_inv",
                 "liberasurecode_rs_vand")

SUPPORTED_EC_TYPES: tuple[str, ...] = tuple(t for t in _MDS_EC_TYPES if t in VALID_EC_TYPES)
"""The MDS Reed-Solomon ec_types whose backend is present in this process."""


def isa_l_vand_is_mds(k: int, m: int) -> bool:
    """Whether `isa_l_rs_vand` with k data and m parity fragments is MDS.

    `isa_l_rs_vand` uses ISA-L's `gf_gen_rs_matrix`, whose header (erasure_code.h)
    documents that some k x k decode sub-matrices are singular unless one of these holds,
    written there with ISA-L's m = k + parity:

        k <= 3;  k == 4 and k+m <= 25;  k == 5 and k+m <= 10;
        k <= 21 and m == 4;  m <= 3.

    Outside that region some sets of k fragments cannot be decoded: with 10+5, decoding
    from fragments {0, 1, 2, 3, 5, 6, 8, 10, 11, 14} fails; with 22+4, 2 of the 14,950
    sets of 22 fail. OpenStack Swift goes further and refuses every isa_l_rs_vand policy
    with m >= 5 (swift/common/storage_policy.py, https://bugs.launchpad.net/swift/+bug/1639691);
    `check_params` applies both rules, so only m <= 3, or m == 4 with k <= 21, pass.
    """
    return (k <= 3 or (k == 4 and k + m <= 25) or (k == 5 and k + m <= 10)
            or (k <= 21 and m == 4) or m <= 3)


def check_params(k: int, m: int, ec_type: str, segment_size: int) -> None:
    """Raise ValueError, saying what to choose instead, unless the parameters are safe."""
    for name, value in (("k", k), ("m", m), ("segment_size", segment_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
    if segment_size > MAX_SEGMENT_SIZE:
        raise ValueError(f"segment_size {segment_size} is above the {MAX_SEGMENT_SIZE} limit")
    if k + m > MAX_FRAGMENTS:
        raise ValueError(f"k + m = {k + m} is above the {MAX_FRAGMENTS} fragments GF(2^8) allows")
    if ec_type not in SUPPORTED_EC_TYPES:
        why = ("is not an MDS Reed-Solomon code or not installed" if ec_type in ALL_EC_TYPES
               else "is unknown to pyeclib")
        raise ValueError(f"ec_type {ec_type!r} {why}; "
                         f"supported here: {', '.join(SUPPORTED_EC_TYPES)}")
    if ec_type == "isa_l_rs_vand" and m >= 5:
        raise ValueError(
            f"isa_l_rs_vand with m={m} is refused, as OpenStack Swift refuses it (bug "
            "1639691): with m >= 5, for most k some sets of k fragments cannot be decoded. "
            "Use isa_l_rs_cauchy or isa_l_rs_vand_inv.")
    if ec_type == "isa_l_rs_vand" and not isa_l_vand_is_mds(k, m):
        raise ValueError(
            f"isa_l_rs_vand with k={k}, m={m} is not MDS (ISA-L's Vandermonde matrix "
            "needs k <= 21 with 4 parity fragments): some sets of k fragments cannot be "
            "decoded. Use isa_l_rs_cauchy or isa_l_rs_vand_inv.")
