"""The transparency log's Merkle tree against published Certificate Transparency test vectors.

Every expected hash here is copied from a published source, never produced by the code under
test. Sources (Apache-2.0 test data):

- [CONST] transparency-dev/merkle testonly/constants.go: the 8-leaf tree used across CT
  implementations (leaf inputs, every complete subtree hash, roots for sizes 0..8, frontiers).
- [VERIFY] transparency-dev/merkle proof/verify_test.go, the same values as
  google/certificate-transparency-go merkletree/merkle_verifier_test.go: inclusion and
  consistency proofs over that tree, and the ways a proof is corrupted to check it fails.
- [IDS] transparency-dev/merkle proof/proof_test.go: which (level, index) nodes make up a proof.
- [RFC] RFC 9162 section 2.1.5: the 7-leaf example tree (a..l) and its proofs.
- [HASHER] transparency-dev/merkle rfc6962/rfc6962_test.go: leaf and node hash values.
- [SUBTREE] transparency-dev/merkle testonly/vectors_test.go: rolling SHA-256 over every subtree
  hash and inclusion proof for trees up to 130 leaves ("Subtree Test Vectors" appendix of
  draft-ietf-plants-merkle-tree-certs). For a subtree [start, end) these are MTH(D[start:end])
  and PATH(index - start, D[start:end]).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilend.core.errors import ValidationFailed
from mobilend.trust.merkle import (
    EMPTY_ROOT,
    CompactTree,
    Node,
    consistency_proof,
    consistency_proof_from_nodes,
    inclusion_proof,
    inclusion_proof_from_nodes,
    leaf_hash,
    node_hash,
    root_from_nodes,
    root_hash,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_hash,
)

h = bytes.fromhex

# [CONST] LeafInputs()
LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# [CONST] RootHashes(): index = tree size, 0..8.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# [CONST] NodeHashes(): NODES[level][index], every complete subtree of the 8-leaf tree.
NODES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# [CONST] CompactTrees(): the frontier after each append, as (level, index) into NODES.
FRONTIERS: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# [VERIFY] inclusionProofs, with the Go file's 1-based leaf number turned into a 0-based index.
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# [VERIFY] consistencyProofs: (old size, new size, proof).
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# [VERIFY] sha256SomeHash: an arbitrary 32-byte value that is no node of the tree.
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def published_node(level: int, index: int) -> bytes:
    return NODES[level][index]


# --- Hashing ---------------------------------------------------------------------------------


def test_hashes_match_published_values() -> None:  # [HASHER]
    assert h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert a != b
    assert node_hash(a, b) != leaf_hash(a + b)  # a node cannot pass for a leaf
    assert node_hash(a, b) != node_hash(b, a)
    assert leaf_hash(b"") != EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_root_hash_matches_published_roots(size: int) -> None:  # [CONST]
    assert root_hash(LEAVES[:size]) == ROOTS[size]
    assert root_from_nodes(size, published_node) == ROOTS[size]


def test_published_node_hashes_are_leaf_hashes_and_roots() -> None:  # [CONST]
    assert [leaf_hash(d) for d in LEAVES] == NODES[0]
    assert root_hash(LEAVES[4:8]) == NODES[2][1]


# --- Proofs against the published vectors ------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proof_matches_published(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(LEAVES, index, size) == proof
    assert inclusion_proof_from_nodes(index, size, published_node) == proof
    assert verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])
    assert verify_inclusion_hash(NODES[0][index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proof_matches_published(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(LEAVES, old, new) == proof
    assert consistency_proof_from_nodes(old, new, published_node) == proof
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def rfc_example() -> dict[str, bytes]:
    """RFC 9162 2.1.5's 7-leaf tree, named as in the RFC, over the [CONST] node hashes."""
    names = dict(zip("abcdefj", NODES[0][:7], strict=True))
    names.update(g=NODES[1][0], h=NODES[1][1], i=NODES[1][2], k=NODES[2][0])
    # l = MTH(D[4:7]) is not a complete subtree; hashed here by hand from RFC 9162 2.1.1.
    names["l"] = hashlib.sha256(b"\x01" + names["i"] + names["j"]).digest()
    return names


def test_rfc_9162_example_proofs() -> None:  # [RFC]
    n = rfc_example()
    assert hashlib.sha256(b"\x01" + n["k"] + n["l"]).digest() == ROOTS[7]
    for index, names in [(0, "bhl"), (3, "cgl"), (4, "fjk"), (6, "ik")]:
        expected = [n[x] for x in names]
        assert inclusion_proof(LEAVES, index, 7) == expected
        assert inclusion_proof_from_nodes(index, 7, published_node) == expected
    for old, names in [(3, "cdgl"), (4, "l"), (6, "ijk")]:
        expected = [n[x] for x in names]
        assert consistency_proof(LEAVES, old, 7) == expected
        assert consistency_proof_from_nodes(old, 7, published_node) == expected


# [IDS] TestInclusion: (size, index, the stored nodes the proof is built from).
INCLUSION_IDS = [
    (1, 0, []),
    (2, 0, [(0, 1)]),
    (2, 1, [(0, 0)]),
    (3, 1, [(0, 0), (0, 2)]),
    (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)]),
    (7, 1, [(0, 0), (1, 1), (0, 6), (1, 2)]),
    (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)]),
    (7, 3, [(0, 2), (1, 0), (0, 6), (1, 2)]),
    (7, 4, [(0, 5), (0, 6), (2, 0)]),
    (7, 5, [(0, 4), (0, 6), (2, 0)]),
    (7, 6, [(1, 2), (2, 0)]),
    (4, 2, [(0, 3), (1, 0)]),
    (5, 3, [(0, 2), (1, 0), (0, 4)]),
    (6, 3, [(0, 2), (1, 0), (1, 2)]),
    (6, 4, [(0, 5), (2, 0)]),
    (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)]),
    (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)]),
    (95, 81, [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
]

# [IDS] TestConsistency: (old size, new size, the stored nodes the proof is built from).
CONSISTENCY_IDS = [
    (1, 2, [(0, 1)]),
    (1, 4, [(0, 1), (1, 1)]),
    (1, 6, [(0, 1), (1, 1), (1, 2)]),
    (2, 3, [(0, 2)]),
    (2, 8, [(1, 1), (2, 1)]),
    (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)]),
    (4, 7, [(0, 6), (1, 2)]),
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, [(1, 2), (0, 6), (2, 0)]),
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)]),
    *[(s, s, []) for s in (1, 2, 3, 4, 5, 7, 8)],
    (2, 4, [(1, 1)]),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)]),
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)]),
    (4, 6, [(1, 2)]),
    (1, 7, [(0, 1), (1, 1), (0, 6), (1, 2)]),
    (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)]),
    (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)]),
    (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
]


def recorder() -> tuple[list[tuple[int, int]], Callable[[int, int], bytes]]:
    calls: list[tuple[int, int]] = []

    def node(level: int, index: int) -> bytes:
        calls.append((level, index))
        return hashlib.sha256(f"{level}/{index}".encode()).digest()

    return calls, node


@pytest.mark.parametrize(("size", "index", "ids"), INCLUSION_IDS)
def test_inclusion_reads_the_published_nodes(
    size: int, index: int, ids: list[tuple[int, int]]
) -> None:
    calls, node = recorder()
    inclusion_proof_from_nodes(index, size, node)
    assert sorted(calls) == sorted(ids)


@pytest.mark.parametrize(("old", "new", "ids"), CONSISTENCY_IDS)
def test_consistency_reads_the_published_nodes(
    old: int, new: int, ids: list[tuple[int, int]]
) -> None:
    calls, node = recorder()
    consistency_proof_from_nodes(old, new, node)
    assert sorted(calls) == sorted(ids)


def test_subtree_vectors_of_the_merkle_tree_certs_draft() -> None:  # [SUBTREE]
    data = [bytes([i]) for i in range(130)]
    hashes, proofs = hashlib.sha256(), hashlib.sha256()
    for end in range(1, 131):
        for start in range(end):
            size = end - start
            if start and start % (1 << (size - 1).bit_length()):
                continue  # not a valid subtree
            sub = data[start:end]
            hashes.update(f"[{start}, {end}) {root_hash(sub).hex()}\n".encode())
            for index in range(start, end):
                proof = inclusion_proof(sub, index - start, size)
                line = f"{index} [{start}, {end})" + "".join(f" {p.hex()}" for p in proof)
                proofs.update(f"{line}\n".encode())
    assert hashes.hexdigest() == "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f"
    assert proofs.hexdigest() == "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f"


# --- Bad proofs fail ([VERIFY] corruptInclusionProof / corruptConsistencyProof) ----------------


def flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    changed = bytes([proof[i][0] ^ bit]) + proof[i][1:]
    return [*proof[:i], changed, *proof[i + 1 :]]


def bad_inclusions(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size // 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("modified leaf", index, size, proof, root, leaf + b"\x00"),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        probes.append((f"proof[{i}] bit 3", index, size, flip(proof, i, 8), root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", index, size, inserted, root, leaf))
        swapped = [proof[1], proof[0], *proof[2:]]
        probes.append(("swapped components", index, size, swapped, root, leaf))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    for desc, i, n, p, root, leaf in bad_inclusions(index, size, proof, ROOTS[size], LEAVES[index]):
        assert not verify_inclusion(leaf, i, n, p, root), desc


def bad_consistencies(
    old: int, new: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    probes = [
        ("old - 1", old - 1, new, root1, root2, proof),
        ("old + 1", old + 1, new, root1, root2, proof),
        ("old ^ 2", old ^ 2, new, root1, root2, proof),
        ("new * 2", old, new * 2, root1, root2, proof),
        ("new // 2", old, new // 2, root1, root2, proof),
        ("wrong old root", old, new, b"WrongRoot", root2, proof),
        ("wrong new root", old, new, root1, b"WrongRoot", proof),
        ("other old root", old, new, SOME_HASH, root2, proof),
        ("swapped roots", old, new, root2, root1, proof),
        ("empty proof", old, new, root1, root2, []),
        ("trailing garbage", old, new, root1, root2, [*proof, b""]),
        ("trailing old root", old, new, root1, root2, [*proof, root1]),
        ("trailing new root", old, new, root1, root2, [*proof, root2]),
        ("preceding garbage", old, new, root1, root2, [b"", *proof]),
        ("preceding old root", old, new, root1, root2, [root1, *proof]),
        ("preceding new root", old, new, root1, root2, [root2, *proof]),
        ("preceding proof[0]", old, new, root1, root2, [proof[0], *proof]),
        ("truncated proof", old, new, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        probes.append((f"proof[{i}] bit 4", old, new, root1, root2, flip(proof, i, 16)))
    if len(proof) > 1:
        swapped = [proof[1], proof[0], *proof[2:]]
        probes.append(("swapped components", old, new, root1, root2, swapped))
    return probes


@pytest.mark.parametrize(("old", "new", "proof"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[bytes]) -> None:
    for desc, m, n, r1, r2, p in bad_consistencies(old, new, ROOTS[old], ROOTS[new], proof):
        assert not verify_consistency(m, n, r1, r2, p), desc


def test_inclusion_in_a_one_leaf_tree() -> None:  # [VERIFY] TestVerifyInclusionSingleEntry
    one = leaf_hash(b"data")
    assert verify_inclusion(b"data", 0, 1, [], one)
    assert not verify_inclusion_hash(one, 0, 1, [], b"")
    assert not verify_inclusion_hash(b"", 0, 1, [], one)
    assert not verify_inclusion_hash(b"", 0, 1, [], b"")


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1), (-1, 1), (0, -1)])
def test_inclusion_with_impossible_arguments_fails(index: int, size: int) -> None:
    # [VERIFY] TestVerifyInclusion probes: never a match, and never an exception.
    assert not verify_inclusion_hash(SOME_HASH, index, size, [], b"")
    assert not verify_inclusion_hash(b"", index, size, [], EMPTY_ROOT)
    assert not verify_inclusion_hash(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_consistency_edge_cases() -> None:
    # After [VERIFY] TestVerifyConsistency, with 32-byte roots (shorter ones always fail here).
    r1, r2 = leaf_hash(b"root 1"), leaf_hash(b"root 2")
    assert verify_consistency(1, 1, r2, r2, [])
    assert not verify_consistency(1, 1, r1, r2, [])  # equal sizes, different roots
    assert not verify_consistency(1, 0, r1, r2, [])  # time travel
    assert not verify_consistency(2, 1, r1, r2, [])
    assert not verify_consistency(1, 2, r1, r2, [])  # a proof is needed
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(-1, 1, r1, r2, [])
    assert not verify_consistency(1, 1, b"short", b"short", [])
    # The empty tree is a prefix of every tree; our rule: its root must be the empty root.
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    assert not verify_consistency(0, 5, r1, ROOTS[5], [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT])


# --- Argument errors of the generators ---------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: inclusion_proof(LEAVES, 0, 0), "tree_size"),
        (lambda: inclusion_proof(LEAVES, 8, 8), "index"),
        (lambda: inclusion_proof(LEAVES, -1, 8), "index"),
        (lambda: inclusion_proof(LEAVES, 0, 9), "tree_size"),
        (lambda: inclusion_proof_from_nodes(3, 3, published_node), "index"),
        (lambda: consistency_proof(LEAVES, 0, 3), "old_size"),
        (lambda: consistency_proof(LEAVES, 6, 3), "new_size"),
        (lambda: consistency_proof(LEAVES, 3, 9), "tree_size"),
        (lambda: consistency_proof_from_nodes(0, 3, published_node), "old_size"),
        (lambda: consistency_proof_from_nodes(4, 2, published_node), "new_size"),
        (lambda: root_from_nodes(-1, published_node), "tree_size"),
    ],
)
def test_generators_refuse_arguments_outside_the_tree(
    call: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        call()
    assert err.value.field == field


# --- The frontier and the node store -----------------------------------------------------------


def test_compact_tree_matches_published_frontiers() -> None:  # [CONST]
    tree, written = CompactTree(), {}
    assert tree.root() == ROOTS[0]
    for size, data in enumerate(LEAVES, start=1):
        for node in tree.append(leaf_hash(data)):
            written[(node.level, node.index)] = node.hash
        assert tree.size == size
        assert tree.root() == ROOTS[size]
        expected = [Node(lv, i, NODES[lv][i]) for lv, i in FRONTIERS[size]]
        assert tree.frontier == expected
    assert written == {(lv, i): x for lv, row in enumerate(NODES) for i, x in enumerate(row)}


def test_append_returns_the_completed_nodes() -> None:
    tree = CompactTree(7, [NODES[2][0], NODES[1][2], NODES[0][6]])
    completed = tree.append(NODES[0][7])
    assert completed == [
        Node(0, 7, NODES[0][7]),
        Node(1, 3, NODES[1][3]),
        Node(2, 1, NODES[2][1]),
        Node(3, 0, NODES[3][0]),
    ]


def test_compact_tree_round_trips_through_bytes() -> None:
    tree = CompactTree()
    for data in LEAVES[:7]:
        tree.append(leaf_hash(data))
    blob = tree.to_bytes()
    assert blob == (7).to_bytes(8, "big") + NODES[2][0] + NODES[1][2] + NODES[0][6]
    again = CompactTree.from_bytes(blob)
    assert (again.size, again.frontier, again.root()) == (7, tree.frontier, ROOTS[7])
    again.append(leaf_hash(LEAVES[7]))
    assert again.root() == ROOTS[8]


@pytest.mark.parametrize(
    "call",
    [
        lambda: CompactTree.from_bytes(b"\x00" * 7),
        lambda: CompactTree.from_bytes((3).to_bytes(8, "big") + b"\x00" * 32),
        lambda: CompactTree.from_bytes((1).to_bytes(8, "big") + b"\x00" * 31),
        lambda: CompactTree(-1),
        lambda: CompactTree(1, [b"\x00" * 31]),
        lambda: CompactTree().append(b"not a hash"),
    ],
)
def test_compact_tree_refuses_malformed_input(call: Callable[[], object]) -> None:
    with pytest.raises(ValidationFailed):
        call()


def build_store(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    tree, store = CompactTree(), {}
    for data in leaves:
        for node in tree.append(leaf_hash(data)):
            store[(node.level, node.index)] = node.hash
    return store


def store_lookup(store: dict[tuple[int, int], bytes], size: int) -> Callable[[int, int], bytes]:
    """Reads the store, and fails on a node that is not complete in the tree of ``size``."""

    def node(level: int, index: int) -> bytes:
        assert (index + 1) << level <= size, f"node ({level}, {index}) is past size {size}"
        return store[(level, index)]

    return node


MANY = [f"leaf {i}".encode() for i in range(70)]
STORE = build_store(MANY)


def test_store_holds_every_complete_subtree_once() -> None:
    n = len(MANY)
    expected = {(lv, i) for lv in range(n.bit_length()) for i in range(n >> lv)}
    assert set(STORE) == expected
    assert len(STORE) == 2 * n - n.bit_count()


@pytest.mark.parametrize("size", range(1, 71))
def test_node_functions_equal_leaf_functions(size: int) -> None:
    node = store_lookup(STORE, size)
    assert root_from_nodes(size, node) == root_hash(MANY[:size])
    for index in range(size):
        assert inclusion_proof_from_nodes(index, size, node) == inclusion_proof(MANY, index, size)
    for old in range(1, size + 1):
        proof = consistency_proof_from_nodes(old, size, node)
        assert proof == consistency_proof(MANY, old, size)


# --- Properties --------------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=48)


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_inclusion_proofs_verify(leaves: list[bytes], data: st.DataObject) -> None:
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(leaves, index, size)
    root = root_hash(leaves[:size])
    assert verify_inclusion(leaves[index], index, size, proof, root)
    assert not verify_inclusion(leaves[index] + b"!", index, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_consistency_proofs_verify(leaves: list[bytes], data: st.DataObject) -> None:
    new = data.draw(st.integers(1, len(leaves)), label="new")
    old = data.draw(st.integers(1, new), label="old")
    proof = consistency_proof(leaves, old, new)
    old_root, new_root = root_hash(leaves[:old]), root_hash(leaves[:new])
    assert verify_consistency(old, new, old_root, new_root, proof)
    if old < new:
        assert not verify_consistency(old, new, old_root, leaf_hash(b"other"), proof)


@settings(max_examples=100, deadline=None)
@given(leaves=st.lists(st.binary(max_size=12), max_size=40))
def test_compact_tree_root_tracks_root_hash(leaves: list[bytes]) -> None:
    tree = CompactTree()
    for size, data in enumerate(leaves, start=1):
        tree.append(leaf_hash(data))
        assert tree.root() == root_hash(leaves[:size])
        assert CompactTree.from_bytes(tree.to_bytes()).root() == tree.root()
