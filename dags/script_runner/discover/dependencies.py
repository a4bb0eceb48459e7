"""Dependencies between scripts (``# runner: after=etl/extract.sh,etl/dims/*.sh``).

Discovery resolves each script's references against the listed scripts (paths relative to the source root,
globs allowed), rejects unknown references and cycles (naming the cycle), and holds back the dependents of
a rejected script ("skipped: dependency X was rejected"). At run time a waiting script's task reads its
dependencies' attempt records in the ledger (:func:`verdict`) and starts only once all of them succeeded.
The DAG's shape never changes: all scripts stay one mapped task.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    # A run task imports this module for verdict(); the DAG file's parse too (the operator's mixins):
    # the spec models, difflib and graphlib are discovery's and imported where it uses them.
    from script_runner.discover.spec import Rejected

_GLOB = set("*?[")


@dataclass
class Graph:
    """What resolution decided: specs with resolved ``after`` paths, new rejections, held-back dependents."""

    specs: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def resolve(
    specs: list[dict[str, Any]], rejected: Iterable[Rejected], *, also_known: Iterable[str] = ()
) -> Graph:
    """Resolve every ``after=`` reference, reject unknown ones and cycles, hold back dependents of rejects.

    :param specs: discovery's planned scripts (wire form; ``after`` holds the patterns as written).
    :param rejected: the scripts discovery already rejected (still valid targets of a reference).
    :param also_known: more scripts a reference may name (``lint`` of single files: the files beside them).
    """
    rejected = list(rejected)
    known = sorted({s["path"] for s in specs} | {r.path for r in rejected} | set(also_known))
    graph = Graph()
    by_path: dict[str, dict[str, Any]] = {}
    for spec in specs:
        paths, problem = _resolve_refs(spec["path"], spec.get("after") or [], known)
        if problem is not None:
            graph.rejected.append(_reject(spec, problem[0], problem[1]))
            continue
        by_path[spec["path"]] = {**spec, "after": paths} if paths else _without_after(spec)
    for tangle, cycle in _tangles(by_path):
        text = " -> ".join(cycle)
        others = [p for p in tangle if p not in cycle]
        if others:
            text += f" (and {', '.join(others)}, tangled with it)"
        for path in tangle:
            spec = by_path.pop(path)
            graph.rejected.append(
                _reject(
                    spec,
                    f"after= forms a cycle (each waits for the next): {text}",
                    "remove one of these after= references so the scripts can run in an order",
                )
            )
    bad = {r.path: "was rejected" for r in [*rejected, *graph.rejected]}
    for path in _ordered(by_path):
        spec = by_path[path]
        blocker = next((d for d in spec.get("after", []) if d in bad), None)
        if blocker is None:
            continue
        reason = f"dependency {blocker} {bad[blocker]}"
        bad[path] = f"was skipped ({reason})"
        graph.skipped.append({"path": path, "status": "skipped", "reason": reason})
        del by_path[path]
    graph.specs = [by_path[s["path"]] for s in specs if s["path"] in by_path]
    return graph


def levels(specs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Each script's level: 0 without dependencies in the run, else one more than its deepest dependency.

    :param specs: the scripts of a run (resolved ``after`` paths; dependencies outside it are ignored).
    """
    by_path = {s["path"]: s for s in specs}
    out: dict[str, int] = {}
    for path in _ordered(by_path):
        deps = [d for d in by_path[path].get("after", []) if d in by_path]
        out[path] = 1 + max(out[d] for d in deps) if deps else 0
    return out


def within(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The specs with ``after`` cut to the scripts of this run (a dependency left out is not waited for).

    :param specs: the scripts that run (after ``only``/``exclude``/schedules narrowed them).
    """
    present = {s["path"] for s in specs}
    out = []
    for spec in specs:
        deps = spec.get("after") or []
        kept = [d for d in deps if d in present]
        if len(kept) == len(deps):
            out.append(spec)
            continue
        left_out = ", ".join(sorted(set(deps) - present))
        notes = [*spec.get("notes", []), f"after: not in this run, not waited for: {left_out}"]
        out.append({**_without_after(spec), **({"after": kept} if kept else {}), "notes": notes})
    return out


def locate(planned: list[list[dict[str, Any]]], task_ids: list[str]) -> None:
    """Give each waiting spec the task instance of each dependency (``after_tasks``: path -> [task, index]).

    A waiting script asks Airflow for that instance's state when the ledger has no final record of it (a
    task marked failed while it waited, or a worker lost before it wrote one), instead of waiting forever.

    :param planned: the shards as mapped (index in a shard = map index); changed in place.
    :param task_ids: the run task of each shard.
    """
    where = {
        spec["path"]: [task_id, index]
        for task_id, specs in zip(task_ids, planned, strict=False)
        for index, spec in enumerate(specs)
    }
    for specs in planned:
        for spec in specs:
            if spec.get("after"):
                spec["after_tasks"] = {d: where[d] for d in spec["after"] if d in where}


# Airflow's final task states; any other (none, scheduled, queued, running, deferred, up_for_retry,
# up_for_reschedule, restarting) means the dependency has not ended, whatever its ledger says.
FINAL_STATES = frozenset({"success", "failed", "upstream_failed", "removed", "skipped"})


def current_verdict(dependency: str, records: list[dict[str, Any]], state: str | None) -> tuple[str, str]:
    """What a waiting script does about one dependency: Airflow's state of its task first, then its ledger.

    The ledger's last record belongs to the dependency's last ended attempt, which a user's clear or
    "mark success" overrides: a cleared dependency whose last record says ``fail`` runs again (wait), and a
    running one marked success (its pod deleted, recorded ``cancel``) is done. So Airflow decides whether
    the dependency has ended and, for success and failure, how; the ledger tells what a skip was (a
    done-marker or a skip code: done; a dependency of its own: skip). Same answers as :func:`verdict`.

    :param dependency: the dependency's path.
    :param records: its attempts in this run, oldest first.
    :param state: its task instance's state in Airflow, ``"none"`` for an instance not yet scheduled.
    """
    if state not in FINAL_STATES:
        return "wait", f"{dependency} has not ended yet (Airflow: {state or 'none'})"
    if state == "success":
        return "ok", ""
    kind, why = verdict(dependency, records)
    if state == "skipped" and kind != "wait":
        return kind, why
    if kind == "skip":
        return kind, why
    return "skip", f"dependency {dependency} ended {state} in Airflow" + (
        "" if records else " without a recorded attempt"
    )


def verdict(dependency: str, records: list[dict[str, Any]]) -> tuple[str, str]:
    """What a waiting script does about one dependency, from that dependency's ledger records in the run.

    Returns ``("ok", "")`` when it succeeded (or was skipped by a done-marker or a skip code: it has nothing
    left to do), ``("wait", why)`` while it has not ended, ``("skip", reason)`` when it failed, was cancelled
    or was itself skipped for a dependency.

    :param dependency: the dependency's path.
    :param records: its attempts in this run, oldest first.
    """
    if not records:
        return "wait", f"{dependency} has not ended yet"
    last = records[-1]
    action = last.get("action")
    if action == "done":
        return "ok", ""
    if action == "skip":
        if last.get("dependency"):
            return "skip", f"dependency {dependency} was skipped ({last.get('reason', '')})"
        return "ok", ""
    if action == "fail":
        return "skip", f"dependency {dependency} failed"
    if action == "cancel":
        return "skip", f"dependency {dependency} was cancelled"
    return "wait", f"{dependency} is being retried"


def _resolve_refs(path: str, refs: list[str], known: list[str]) -> tuple[list[str], tuple[str, str] | None]:
    out: list[str] = []
    for ref in refs:
        if _GLOB & set(ref):
            hits = [k for k in known if fnmatch.fnmatchcase(k, ref) and k != path]
        else:
            hits = [ref] if ref in known else []
        if not hits:
            import difflib

            near = difflib.get_close_matches(ref, [k for k in known if k != path], n=3, cutoff=0.6)
            return [], (
                f"after={ref}: no script of this source matches it",
                "name scripts by their path under the source root"
                + (f" (did you mean {', '.join(near)}?)" if near else "")
                + "; hidden and ignored files are not scripts",
            )
        out.extend(h for h in hits if h not in out)
    return out, None


def _tangles(by_path: dict[str, dict[str, Any]]) -> list[tuple[list[str], list[str]]]:
    """The strongly connected components of the ``after`` graph that hold a cycle, each once: its scripts
    (sorted) and one cycle through its first script (a path that ends where it starts).

    Tarjan's algorithm, iterative (a long chain of dependencies must not hit the recursion limit).
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[tuple[list[str], list[str]]] = []
    for root in sorted(by_path):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, _deps(by_path, root))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, _deps(by_path, nxt)))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1 or node in _deps(by_path, node):
                    members.sort()
                    out.append((members, _cycle_through(by_path, members)))
    return sorted(out)


def _cycle_through(by_path: dict[str, dict[str, Any]], members: list[str]) -> list[str]:
    """A shortest cycle from the first of ``members`` back to it, inside the component."""
    start, inside = members[0], set(members)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(_deps(by_path, node)):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt in inside and nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]


def _deps(by_path: dict[str, dict[str, Any]], path: str) -> list[str]:
    return sorted((d for d in by_path[path].get("after", []) if d in by_path), reverse=True)


def _ordered(by_path: dict[str, dict[str, Any]]) -> list[str]:
    """Paths with every dependency before its dependents (the graph has no cycle)."""
    graph = {p: sorted(d for d in by_path[p].get("after", []) if d in by_path) for p in sorted(by_path)}
    from graphlib import TopologicalSorter

    return list(TopologicalSorter(graph).static_order())


def _reject(spec: dict[str, Any], reason: str, fix: str) -> Rejected:
    from script_runner.discover.spec import Rejected

    return Rejected(path=spec["path"], uri=spec.get("uri", ""), reason=reason, fix=fix)


def _without_after(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "after"}
