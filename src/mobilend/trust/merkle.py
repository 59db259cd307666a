"""The Merkle tree of the transparency log, as RFC 9162 (CT v2) section 2.1 defines it (pure).

Hashes are SHA-256 with domain separation: a leaf is ``SHA-256(0x00 || d)``, an inner node
``SHA-256(0x01 || left || right)``, the empty tree ``SHA-256("")``. Leaves are indexed from 0.
Proofs are lists of 32-byte hashes in RFC order (from the leaf's side up to the root), so they
are byte-compatible with Certificate Transparency verifiers.

Two ways to build proofs:

- From leaf inputs: `root_hash`, `inclusion_proof`, `consistency_proof`. These follow the RFC's
  recursive definitions (MTH, PATH, PROOF) and rehash the tree: O(n) per call. They are the
  reference, and fine for small trees and tests.
- From stored node hashes: `root_from_nodes`, `inclusion_proof_from_nodes`,
  `consistency_proof_from_nodes` take ``node(level, index)``, the hash of the perfect subtree of
  ``2**level`` leaves starting at leaf ``index * 2**level``. They read O(log n) nodes per call.

What a store keeps for the second way: every complete subtree root, i.e. ``(level, index)`` for
all ``index < tree_size >> level``; that is ``2n - popcount(n) <= 2n - 1`` hashes for n leaves.
Nodes never change once written (the log only appends), so one table serves every past tree
size. When leaf ``i`` is appended, the perfect subtrees that end at ``i`` are completed: level 0
always, and one more level for each trailing 1 bit of ``i``. `CompactTree.append` returns exactly
those nodes, computed from the frontier (the O(log n) roots of the perfect subtrees that make up
the tree), so an append costs O(log n) hashes and writes (2 writes on average). A store keeps the
frontier with `CompactTree.to_bytes` / `CompactTree.from_bytes` to append without reading nodes.

Generators raise `ValidationFailed` on arguments outside the tree (they come from our own code or
a request we can reject). Verifiers never raise: anything a verifier is handed from outside that
does not check out, including impossible indexes or sizes and hashes that are not 32 bytes,
returns False. See docs/transparency-log.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mobilend.core.errors import ValidationFailed

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

NodeLookup = Callable[[int, int], bytes]
"""``node(level, index)``: the hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf input: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (size >= 2): RFC 9162's k."""
    return 1 << ((size - 1).bit_length() - 1)


def _is_power_of_two(size: int) -> bool:
    return size > 0 and size & (size - 1) == 0


# --- Arguments -----------------------------------------------------------------------------


def _check_index(index: int, tree_size: int) -> None:
    if tree_size < 1:
        raise ValidationFailed("tree_size", "range", f"tree_size must be >= 1, got {tree_size}")
    if not 0 <= index < tree_size:
        raise ValidationFailed("index", "range", f"index {index} not in [0, {tree_size})")


def _check_sizes(old_size: int, new_size: int) -> None:
    if old_size < 1:
        raise ValidationFailed(
            "old_size", "range", f"old_size must be >= 1 (RFC 9162: 0 < m), got {old_size}"
        )
    if new_size < old_size:
        raise ValidationFailed(
            "new_size", "range", f"new_size {new_size} is smaller than old_size {old_size}"
        )


def _check_leaves(leaves: Sequence[bytes], tree_size: int) -> None:
    if tree_size > len(leaves):
        raise ValidationFailed(
            "tree_size", "range", f"tree_size {tree_size} exceeds the {len(leaves)} leaves given"
        )


# --- From leaf inputs: the RFC 9162 definitions, transcribed ----------------------------------


def _mth(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) over leaf hashes (RFC 9162 2.1.1)."""
    size = end - start
    if size == 0:
        return EMPTY_ROOT
    if size == 1:
        return hashes[start]
    k = _split(size)
    return node_hash(_mth(hashes, start, start + k), _mth(hashes, start + k, end))


def _path(m: int, hashes: Sequence[bytes], start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]), m relative to start (RFC 9162 2.1.3.1)."""
    size = end - start
    if size == 1:
        return []
    k = _split(size)
    if m < k:
        return [*_path(m, hashes, start, start + k), _mth(hashes, start + k, end)]
    return [*_path(m - k, hashes, start + k, end), _mth(hashes, start, start + k)]


def _subproof(m: int, hashes: Sequence[bytes], start: int, end: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b), m relative to start (RFC 9162 2.1.4.1)."""
    size = end - start
    if m == size:
        return [] if whole else [_mth(hashes, start, end)]
    k = _split(size)
    if m <= k:
        return [*_subproof(m, hashes, start, start + k, whole), _mth(hashes, start + k, end)]
    return [*_subproof(m - k, hashes, start + k, end, False), _mth(hashes, start, start + k)]


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the leaf inputs; `EMPTY_ROOT` for no leaves."""
    hashes = [leaf_hash(d) for d in leaves]
    return _mth(hashes, 0, len(hashes))


def inclusion_proof(leaves: Sequence[bytes], index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) over the first ``tree_size`` leaf inputs."""
    _check_index(index, tree_size)
    _check_leaves(leaves, tree_size)
    hashes = [leaf_hash(d) for d in leaves[:tree_size]]
    return _path(index, hashes, 0, tree_size)


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]); empty when the sizes are equal; old_size 0 is refused."""
    _check_sizes(old_size, new_size)
    _check_leaves(leaves, new_size)
    hashes = [leaf_hash(d) for d in leaves[:new_size]]
    return _subproof(old_size, hashes, 0, new_size, True)


# --- From stored nodes -------------------------------------------------------------------------


def _range_hash(start: int, end: int, node: NodeLookup) -> bytes:
    """MTH(D[start:end]) for a node of the RFC tree: one stored node, or those on its right edge."""
    size = end - start
    if _is_power_of_two(size):
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = _split(size)
    return node_hash(_range_hash(start, start + k, node), _range_hash(start + k, end, node))


def root_from_nodes(tree_size: int, node: NodeLookup) -> bytes:
    """MTH(D[tree_size]) from at most log2(n) + 1 stored nodes."""
    if tree_size < 0:
        raise ValidationFailed("tree_size", "range", f"tree_size must be >= 0, got {tree_size}")
    return EMPTY_ROOT if tree_size == 0 else _range_hash(0, tree_size, node)


def inclusion_proof_from_nodes(index: int, tree_size: int, node: NodeLookup) -> list[bytes]:
    """The same proof as `inclusion_proof`, read from stored nodes."""
    _check_index(index, tree_size)
    top_down: list[bytes] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            top_down.append(_range_hash(start + k, end, node))
            end = start + k
        else:
            top_down.append(_range_hash(start, start + k, node))
            start += k
    return top_down[::-1]


def consistency_proof_from_nodes(old_size: int, new_size: int, node: NodeLookup) -> list[bytes]:
    """The same proof as `consistency_proof`, read from stored nodes."""
    _check_sizes(old_size, new_size)
    top_down: list[bytes] = []
    start, end, whole = 0, new_size, True
    while old_size != end:
        k = _split(end - start)
        if old_size <= start + k:
            top_down.append(_range_hash(start + k, end, node))
            end = start + k
        else:
            top_down.append(_range_hash(start, start + k, node))
            start, whole = start + k, False
    if not whole:
        top_down.append(_range_hash(start, end, node))
    return top_down[::-1]


# --- Verification (RFC 9162 2.1.3.2 and 2.1.4.2) -----------------------------------------------


def _all_hashes(*groups: Sequence[bytes]) -> bool:
    return all(len(h) == HASH_SIZE for group in groups for h in group)


def _shift_to_odd(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift fn and sn equally until LSB(fn) is set or fn is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True if ``proof`` shows leaf input ``leaf`` at ``index`` in the tree of ``root``."""
    return verify_inclusion_hash(leaf_hash(leaf), index, tree_size, proof, root)


def verify_inclusion_hash(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """`verify_inclusion` for an already hashed leaf. Never raises on bad input."""
    if not 0 <= index < tree_size or not _all_hashes([leaf_hash, root], proof):
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True if ``proof`` shows the tree of ``old_root`` is a prefix of the tree of ``new_root``.

    Beyond the RFC (which needs 0 < old_size < new_size): equal sizes need an empty proof and
    equal roots; old_size 0 needs an empty proof and ``old_root == EMPTY_ROOT`` (the empty tree
    is a prefix of every tree). Never raises on bad input.
    """
    if not 0 <= old_size <= new_size or not _all_hashes([old_root, new_root], proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = [old_root, *proof] if _is_power_of_two(old_size) else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# --- The frontier for appends ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """A stored node: the root hash of the perfect subtree of ``2**level`` leaves starting at
    leaf ``index * 2**level``."""

    level: int
    index: int
    hash: bytes


class CompactTree:
    """The right-edge frontier of an append-only tree: one perfect subtree root per set bit of
    the size, left to right (highest level first). O(log n) memory; enough to append and to
    compute the root. Mutable: `append` changes it in place.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValidationFailed("size", "range", f"size must be >= 0, got {size}")
        if len(hashes) != size.bit_count():
            raise ValidationFailed(
                "frontier", "length", f"size {size} needs {size.bit_count()} hashes"
            )
        if not _all_hashes(hashes):
            raise ValidationFailed("frontier", "length", f"hashes must be {HASH_SIZE} bytes")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> list[Node]:
        """The frontier as stored nodes, left to right."""
        levels = [lv for lv in range(self._size.bit_length() - 1, -1, -1) if self._size >> lv & 1]
        return [
            Node(lv, (self._size >> lv) - 1, h) for lv, h in zip(levels, self._hashes, strict=True)
        ]

    def root(self) -> bytes:
        """MTH of the tree: fold the frontier from the right."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Add a leaf by its hash; return the nodes this completes, lowest level first."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValidationFailed("leaf_hash", "length", f"leaf_hash must be {HASH_SIZE} bytes")
        index, h = self._size, leaf_hash
        completed = [Node(0, index, h)]
        level = 0
        while index >> level & 1:
            h = node_hash(self._hashes.pop(), h)
            level += 1
            completed.append(Node(level, index >> level, h))
        self._hashes.append(h)
        self._size += 1
        return completed

    def to_bytes(self) -> bytes:
        """8-byte big-endian size, then the frontier hashes left to right."""
        return self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactTree:
        """Inverse of `to_bytes`; raises ValidationFailed on a malformed blob."""
        if len(data) < 8 or (len(data) - 8) % HASH_SIZE:
            raise ValidationFailed("frontier", "length", "not a serialised CompactTree")
        body = data[8:]
        hashes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return cls(int.from_bytes(data[:8], "big"), hashes)
