"""A simple layout of the lineage tree: a version's depth is its generation (agent 0 at the top), leaves take
consecutive places from left to right in depth-first order, and a parent stands centred over its children. Done
here rather than with graphviz or networkx, which a tree this plain does not need."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def tree_layout(parents: Mapping[int, int | None]) -> dict[int, tuple[float, int]]:
    """Each version's (x, depth), given each version's parent. A version is edited from an earlier one, so one
    whose parent is None, unknown or not earlier is drawn as a root. Iterative, so a long chain of versions does
    not meet the recursion limit."""
    children: dict[int, list[int]] = {number: [] for number in parents}
    roots = []
    for number in sorted(parents):
        parent = parents[number]
        if parent is not None and parent in children and parent < number:
            children[parent].append(number)
        else:
            roots.append(number)
    depth = {number: 0 for number in roots}
    order = list(_preorder(roots, children))
    for number in order:
        for child in children[number]:
            depth[child] = depth[number] + 1
    x: dict[int, float] = {}
    leaves = 0
    for number in order:
        if not children[number]:
            x[number] = float(leaves)
            leaves += 1
    for number in reversed(order):
        if children[number]:
            x[number] = (x[children[number][0]] + x[children[number][-1]]) / 2
    return {number: (x[number], depth[number]) for number in order}


def _preorder(roots: list[int], children: Mapping[int, list[int]]) -> Iterable[int]:
    """Versions in depth-first order, children by number."""
    stack = list(reversed(roots))
    while stack:
        number = stack.pop()
        yield number
        stack.extend(reversed(children[number]))
