"""Groups of near-identical pictures: 64-bit perceptual hashes within a Hamming distance.

Comparing every pair of 100,000 hashes is 5 billion comparisons. Multi-index
hashing avoids that: split each hash into ``distance + 1`` chunks; two hashes at
most ``distance`` bits apart agree exactly on at least one chunk (pigeonhole), so
only hashes sharing a chunk value are compared, and those few comparisons run as
numpy popcounts. Pairs within the distance are joined into groups (union-find),
so a chain of close pictures is one group.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

BITS = 64


def hamming(a: str, b: str) -> int:
    """Bits that differ between two 16-hex-digit hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_duplicate_groups(
    hashes: Sequence[str],
    distance: int = 4,
    also: Callable[[int, int], bool] | None = None,
) -> list[list[int]]:
    """Indexes of ``hashes`` in groups of two or more within ``distance`` bits (each
    group sorted, groups largest first, then by first index). ``also(i, j)``, when
    given, must hold too for a pair to join (a second hash, the colours)."""
    if distance < 0 or distance >= BITS:
        raise ValueError(f"distance must be 0 to {BITS - 1}, not {distance}")
    n = len(hashes)
    if n < 2:
        return []
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    chunks = distance + 1
    bounds = np.linspace(0, BITS, chunks + 1).astype(int)
    for start, stop in itertools.pairwise(bounds):
        mask = np.uint64((1 << (stop - start)) - 1)
        keys = (values >> np.uint64(start)) & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        edges = np.flatnonzero(np.diff(sorted_keys)) + 1
        for bucket in np.split(order, edges):
            if len(bucket) < 2:
                continue
            members = values[bucket]
            xor = members[:, None] ^ members[None, :]
            close = np.bitwise_count(xor) <= distance
            left, right = np.nonzero(np.triu(close, k=1))
            for a, b in zip(bucket[left], bucket[right], strict=True):
                root_a, root_b = find(int(a)), find(int(b))
                if root_a == root_b:  # joined already: ``also`` need not be asked
                    continue
                if also is not None and not also(int(a), int(b)):
                    continue
                parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    found = [members for members in groups.values() if len(members) > 1]
    return sorted(found, key=lambda g: (-len(g), g[0]))
