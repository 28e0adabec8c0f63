"""Small graph searches for the IVR's checks: a flow's nodes, or the flows entering each other.

Graphs map a name to the names it leads to; they hold a few dozen names at most, so plain
breadth-first searches per name are fast enough and easy to check.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

__all__ = ["cycle", "loops", "reach"]


def loops(
    order: list[str], graph: Mapping[str, list[str]], *, bottom_only: bool
) -> list[list[str]]:
    """The strongly connected groups of ``graph`` that hold a cycle, each in ``order``; with
    ``bottom_only``, only groups with no edge out of them. Graphs here are a flow's nodes or
    the flows: a few dozen at most, so reachability per node is cheap enough."""
    reached = {n: reach(n, graph) for n in order}
    found: list[list[str]] = []
    done: set[str] = set()
    for n in order:
        if n in done:
            continue
        group = {m for m in reached[n] if n in reached[m]}
        done |= group | {n}
        if n not in reached[n]:
            continue  # no cycle through n
        if bottom_only and any(t not in group for m in group for t in graph[m]):
            continue
        found.append([m for m in order if m in group])
    return found


def reach(start: str, graph: Mapping[str, list[str]]) -> set[str]:
    """Nodes reachable from ``start`` in one or more steps."""
    seen: set[str] = set()
    todo = deque(graph.get(start, []))
    while todo:
        n = todo.popleft()
        if n not in seen:
            seen.add(n)
            todo.extend(graph.get(n, []))
    return seen


def cycle(start: str, graph: Mapping[str, list[str]], group: set[str]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``group``."""
    parent: dict[str, str] = {}
    todo = deque([start])
    while todo:
        n = todo.popleft()
        for t in graph.get(n, []):
            if t == start:
                path = [n]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start] if n != start else [start, start]
            if t in group and t not in parent:
                parent[t] = n
                todo.append(t)
    return [start, start]
