"""The kubelet: takes Pending pods, runs their main container, reports status and logs like a node does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.kube_double import runtime, stats
from local.kube_double.store import Store, now

if TYPE_CHECKING:
    from local.kube_double.faults import Faults, PodFault
    from local.kube_double.metadata import MetadataServer

log = logging.getLogger("kube_double.kubelet")
USAGE_KEPT = 500  # pods whose sampled usage GET /_double/usage serves, newest last
SHUTDOWN_GRACE_SECONDS = 2.0  # the node's shutdownGracePeriod for regular pods (short here)
# Faults that stop a running container: (pod reason, container reason), grace seconds, SIGKILL at once.
_FAULT_STOPS: dict[str, tuple[tuple[str, str], float, bool]] = {
    "oom": (("", "OOMKilled"), 0, True),
    "evict": (("Evicted", "Evicted"), 0, True),
    "node_shutdown": (("Terminated", "Error"), SHUTDOWN_GRACE_SECONDS, False),
}


def stamp() -> str:
    """RFC 3339 with nanoseconds, as container log timestamps are written."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass
class PodLogs:
    """A pod's log lines with their timestamps; followers wait on the condition."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    closed: bool = False
    cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def add(self, line: str, at: str | None = None) -> None:
        async with self.cond:
            self.lines.append((at or stamp(), line))
            self.cond.notify_all()

    async def close(self) -> None:
        async with self.cond:
            self.closed = True
            self.cond.notify_all()


class Kubelet:
    """Runs pods. Runtime handles outlive a kubelet restart; the supervising tasks do not."""

    def __init__(
        self,
        store: Store,
        config: runtime.RuntimeConfig,
        faults: Faults,
        metadata: MetadataServer | None = None,
    ) -> None:
        self.store, self.config, self.faults, self.metadata = store, config, faults, metadata
        self.handles: dict[str, runtime.Handle] = {}
        self.logs: dict[str, PodLogs] = {}
        self.pumps: dict[str, asyncio.Task[None]] = {}
        self.supervisors: dict[str, asyncio.Task[None]] = {}
        self.deleting: set[str] = set()
        self.usage: dict[str, stats.PodUsage] = {}  # by pod uid, what the node sampled (stats.py)
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.restarts = 0
        self._background: set[asyncio.Task[None]] = set()

    # -- loop -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop())

    def wake(self) -> None:
        self._wake.set()

    async def restart(self) -> None:
        """Stop supervising (containers keep running), then start again and re-adopt every pod."""
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self.supervisors.values()):
            task.cancel()
        self.supervisors.clear()
        self.restarts += 1
        log.warning(
            "kubelet restarted (%d); re-adopting %d running container(s)", self.restarts, len(self.handles)
        )
        await asyncio.sleep(0.5)
        self.start()

    async def _loop(self) -> None:
        while True:
            for (_, _), pod in list(self.store.objects["pods"].items()):
                uid = pod["metadata"]["uid"]
                if uid in self.supervisors or uid in self.deleting:
                    continue
                if pod["status"].get("phase") in ("Succeeded", "Failed") and uid not in self.handles:
                    continue
                self.supervisors[uid] = asyncio.create_task(
                    self._supervise(pod["metadata"]["namespace"], pod["metadata"]["name"], uid)
                )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)

    # -- one pod --------------------------------------------------------------------------------------
    def _pod(self, ns: str, name: str, uid: str) -> dict[str, Any] | None:
        pod = self.store.get("pods", ns, name)
        return pod if pod is not None and pod["metadata"]["uid"] == uid else None

    def _set_status(self, ns: str, name: str, uid: str, **status: Any) -> dict[str, Any] | None:
        pod = self._pod(ns, name, uid)
        if pod is None:
            return None
        pod["status"].update(status)
        return self.store.update("pods", pod)

    async def _supervise(self, ns: str, name: str, uid: str) -> None:
        try:
            await self._run(ns, name, uid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: pod %s/%s failed in the double itself", ns, name)
            self._finish(
                ns, name, uid, exit_code=128, reason="ContainerCannotRun", message="kube double error"
            )

    async def _run(self, ns: str, name: str, uid: str) -> None:
        pod = self._pod(ns, name, uid)
        if pod is None:
            return
        handle = self.handles.get(uid)
        fault = (
            self.faults.for_pod(pod) if handle is None and pod["status"].get("phase") == "Pending" else None
        )
        if handle is None and pod["status"].get("phase") != "Pending":
            return  # finished before a restart, nothing to adopt
        if fault and fault.kind in ("unschedulable", "image_pull"):
            await self._stuck(ns, name, uid, fault)
            return
        if handle is None:
            handle = await self._launch(ns, name, uid)
            if handle is None:
                return
        await self._watch_running(ns, name, uid, handle, fault)

    async def _launch(self, ns: str, name: str, uid: str) -> runtime.Handle | None:
        pod = self._pod(ns, name, uid)
        if pod is None:
            return None
        pod["spec"]["nodeName"] = "local-node"
        # The log's ms timestamp is when the node took the pod (bench/podstart.py: pod created -> running).
        log.info("pod %s/%s scheduled", ns, name)
        self._set_status(ns, name, uid, conditions=[_cond("PodScheduled", "True")])
        self.store.add_event(
            pod,
            reason="Scheduled",
            message=f"Successfully assigned {ns}/{name} to local-node",
            component="default-scheduler",
        )
        container = runtime.container_of(pod)
        try:
            extra = {}
            account = pod["spec"].get("serviceAccountName") or "default"
            if self.metadata is not None:
                extra = await self.metadata.open(uid, account)
            handle = await runtime.start(pod, self.config, extra)
        except Exception as exc:
            self.store.add_event(pod, reason="Failed", message=f"Error: {exc}", type_="Warning")
            self._finish(ns, name, uid, exit_code=128, reason="StartError", message=str(exc))
            return None
        self._follow(handle)
        self.store.add_event(
            pod, reason="Pulled", message=f'Container image "{container.get("image")}" already present'
        )
        self.store.add_event(pod, reason="Created", message=f"Created container {container.get('name')}")
        self.store.add_event(pod, reason="Started", message=f"Started container {container.get('name')}")
        started = now()
        self._set_status(
            ns,
            name,
            uid,
            phase="Running",
            startTime=started,
            hostIP="127.0.0.1",
            podIP="127.0.0.1",
            conditions=[
                _cond("PodScheduled", "True"),
                _cond("Initialized", "True"),
                _cond("ContainersReady", "True"),
                _cond("Ready", "True"),
            ],
            containerStatuses=[_cstatus(container, {"running": {"startedAt": started}}, ready=True)],
        )
        log.info("pod %s/%s Running (%s, %s)", ns, name, self.config.mode, handle.name)
        return handle

    def _follow(self, handle: runtime.Handle) -> None:
        self.handles[handle.uid] = handle
        self.logs[handle.uid] = PodLogs()
        self.pumps[handle.uid] = asyncio.create_task(self._pump(handle.uid, handle))

    async def adopt(self, records: list[dict[str, Any]]) -> int:
        """Re-adopt the containers an earlier double left running (a restart of the API server and kubelet).

        A pod still in the store gets its container back: its log is read again from the container's log
        file (with the original timestamps), its end is seen from the exit file, and its metadata-server
        listener is opened again at the same address. Containers of pods no longer stored are stopped.

        :param records: :meth:`runtime.Handle.record` of each container, as saved.
        """
        adopted = 0
        for record in records:
            handle = runtime.adopt(record)
            pod = next(
                (p for p in self.store.objects["pods"].values() if p["metadata"]["uid"] == handle.uid), None
            )
            if pod is None:
                await runtime.stop(handle, self.config, grace=1)
                continue
            if self.metadata is not None and record.get("metadata"):
                account = pod["spec"].get("serviceAccountName") or "default"
                await self.metadata.reopen(handle.uid, account, str(record["metadata"]))
            self._follow(handle)
            adopted += 1
        return adopted

    def saved_logs(self) -> dict[str, list[list[str]]]:
        """The logs of finished pods that still exist (a node keeps them until the pod is deleted)."""
        live = {p["metadata"]["uid"] for p in self.store.objects["pods"].values()}
        return {
            uid: [list(line) for line in logs.lines]
            for uid, logs in self.logs.items()
            if uid in live and uid not in self.handles and logs.closed
        }

    def restore_logs(self, saved: dict[str, list[list[str]]]) -> None:
        """Take back :meth:`saved_logs` after a restart.

        :param saved: pod uid -> ``[timestamp, line]`` pairs.
        """
        for uid, lines in saved.items():
            self.logs[uid] = PodLogs(lines=[(at, text) for at, text in lines], closed=True)

    def saved_handles(self) -> list[dict[str, Any]]:
        """Every container this kubelet runs, as :meth:`adopt` takes them back."""
        out = []
        for handle in self.handles.values():
            record = handle.record()
            if self.metadata is not None and handle.uid in self.metadata.leases:
                lease = self.metadata.leases[handle.uid]
                record["metadata"] = f"{lease.address}:{lease.port}"
            out.append(record)
        return out

    async def _pump(self, uid: str, handle: runtime.Handle) -> None:
        """Follow the container's log file (lines stamped by its monitor) until its exit code is written."""
        logs = self.logs[uid]
        exit_file = handle.folder / "exit"
        rest = b""
        with (handle.folder / "log").open("ab+") as log_file:
            log_file.seek(0)
            while True:
                ended = exit_file.exists()  # before the read: the monitor writes the exit after the last line
                chunk = log_file.read()
                if chunk:
                    *lines, rest = (rest + chunk).split(b"\n")
                    for raw in lines:
                        at, _, text = raw.decode(errors="replace").partition(" ")
                        await logs.add(text, at)
                    continue
                if ended:
                    break
                await asyncio.sleep(0.1)
        try:
            handle.exit_code = int(exit_file.read_text())
        except (OSError, ValueError):
            handle.exit_code = 137
        if handle.shim is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.shim.wait(), timeout=5)
        handle.done.set()
        await logs.close()

    async def _watch_running(
        self, ns: str, name: str, uid: str, handle: runtime.Handle, fault: PodFault | None
    ) -> None:
        pod = self._pod(ns, name, uid)
        deadline = (pod or {}).get("spec", {}).get("activeDeadlineSeconds")
        loop = asyncio.get_running_loop()
        started = loop.time() - _running_for((pod or {}).get("status", {}).get("startTime"))
        outcome: tuple[str, str] | None = None  # (pod reason, container reason) when we end it
        while not handle.done.is_set():
            self._sample(ns, name, handle)
            elapsed = loop.time() - started
            if fault and fault.kind == "preempt" and elapsed >= fault.after:
                self._preempt(ns, name, uid)
                return
            strike = _FAULT_STOPS.get(fault.kind) if fault and elapsed >= fault.after else None
            if strike and outcome is None:
                outcome, grace, hard = strike
                await runtime.stop(handle, self.config, grace=grace, hard=hard)
                break
            if deadline and elapsed >= float(deadline) and outcome is None:
                outcome = ("DeadlineExceeded", "DeadlineExceeded")
                await runtime.stop(handle, self.config, grace=5)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handle.done.wait(), timeout=0.2)
        await handle.done.wait()
        self._sample_end(handle)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pumps[uid], timeout=5)
        code = handle.exit_code if handle.exit_code is not None else 137
        if code < 0:  # killed by a signal: report as the shell would
            code = 128 - code
        if uid in self.deleting:
            return
        self._report(ns, name, uid, outcome, code, handle)
        self._forget(uid)

    def _sample(self, ns: str, name: str, handle: runtime.Handle) -> None:
        """One look at the pod's usage (cgroup for containers, /proc for processes)."""
        usage = self.usage.get(handle.uid)
        if usage is None:
            source = "cgroup" if handle.cid_file is not None else "procfs"
            usage = self.usage[handle.uid] = stats.PodUsage(ns, name, handle.uid, source)
            while len(self.usage) > USAGE_KEPT:
                self.usage.pop(next(iter(self.usage)))
        try:
            if handle.cid_file is not None:
                stats.sample_cgroup(usage, handle.cid_file)
            else:
                stats.sample_processes(usage, handle.pid)
        except Exception:  # a sample is never worth a pod
            log.debug("usage sample of %s/%s failed", ns, name, exc_info=True)

    def _sample_end(self, handle: runtime.Handle) -> None:
        usage = self.usage.get(handle.uid)
        if usage is not None:
            usage.final = True
        if handle.cid_file is not None:
            handle.cid_file.unlink(missing_ok=True)

    def _report(
        self, ns: str, name: str, uid: str, outcome: tuple[str, str] | None, code: int, handle: runtime.Handle
    ) -> None:
        """The pod's final status from how its container ended (and which fault, if any, ended it)."""
        pod = self._pod(ns, name, uid)
        if outcome == ("", "OOMKilled") or (
            outcome is None and code == 137 and handle.memory_limited and not handle.killed_by_us
        ):
            self._finish(ns, name, uid, exit_code=137, reason="OOMKilled", message="")
        elif outcome and outcome[0] == "Evicted":
            msg = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi."
            if pod is not None:
                self.store.add_event(pod, reason="Evicted", message=msg, type_="Warning")
            self._finish(ns, name, uid, exit_code=137, reason="Evicted", message=msg, pod_reason="Evicted")
        elif outcome and outcome[0] == "Terminated":
            self._node_shutdown(ns, name, uid, code)
        elif outcome and outcome[0] == "DeadlineExceeded":
            msg = "Pod was active on the node longer than the specified deadline"
            if pod is not None:
                self.store.add_event(pod, reason="DeadlineExceeded", message=msg, type_="Warning")
            self._finish(
                ns, name, uid, exit_code=code, reason="Error", message=msg, pod_reason="DeadlineExceeded"
            )
        else:
            self._finish(
                ns, name, uid, exit_code=code, reason="Completed" if code == 0 else "Error", message=""
            )

    def _node_shutdown(self, ns: str, name: str, uid: str, code: int) -> None:
        """Graceful node shutdown (a spot or preemptible VM reclaimed): the kubelet stops the pod and leaves
        it Failed with reason Terminated and a DisruptionTarget condition; the pod object stays."""
        pod = self._pod(ns, name, uid)
        if pod is None:
            return
        msg = "Pod was terminated in response to imminent node shutdown."
        container = runtime.container_of(pod).get("name")
        self.store.add_event(pod, reason="Killing", message=f"Stopping container {container}")
        self._finish(ns, name, uid, exit_code=code, reason="Error", message=msg, pod_reason="Terminated")
        pod = self._pod(ns, name, uid)
        if pod is not None:
            disruption = _cond("DisruptionTarget", "True", "TerminationByKubelet", msg)
            self._set_status(ns, name, uid, conditions=[*(pod["status"].get("conditions") or []), disruption])

    def _preempt(self, ns: str, name: str, uid: str) -> None:
        """Preemption as the scheduler does it: a DisruptionTarget condition, an Event, then a graceful
        delete of the pod object (the Eviction API and node drains end the same way: the pod is gone)."""
        pod = self._pod(ns, name, uid)
        if pod is None:
            return
        message = f"Preempted by pod local/high-priority on node {pod['spec'].get('nodeName', 'local-node')}"
        conditions = [c for c in pod["status"].get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conditions.append(_cond("DisruptionTarget", "True", "PreemptionByScheduler", message))
        self._set_status(ns, name, uid, conditions=conditions)
        self.store.add_event(
            pod, reason="Preempted", message=message, type_="Warning", component="default-scheduler"
        )
        log.info("pod %s/%s preempted (fault): deleting", ns, name)
        grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        task = asyncio.create_task(self.delete(ns, name, uid, grace))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _finish(
        self,
        ns: str,
        name: str,
        uid: str,
        *,
        exit_code: int,
        reason: str,
        message: str,
        pod_reason: str | None = None,
    ) -> None:
        pod = self._pod(ns, name, uid)
        if pod is None:
            return
        container = runtime.container_of(pod)
        started = pod["status"].get("startTime") or now()
        terminated = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": now(),
            "containerID": f"local://{uid}",
        }
        if message:
            terminated["message"] = message
        status: dict[str, Any] = {
            "phase": "Succeeded" if exit_code == 0 and not pod_reason else "Failed",
            "containerStatuses": [_cstatus(container, {"terminated": terminated}, ready=False)],
            "conditions": [
                _cond("PodScheduled", "True"),
                _cond("Initialized", "True"),
                _cond("ContainersReady", "False", "PodCompleted"),
                _cond("Ready", "False", "PodCompleted"),
            ],
        }
        if pod_reason:
            status.update(reason=pod_reason, message=message)
        self._set_status(ns, name, uid, **status)
        log.info("pod %s/%s %s exit=%s reason=%s", ns, name, status["phase"], exit_code, pod_reason or reason)

    async def _stuck(self, ns: str, name: str, uid: str, fault: PodFault) -> None:
        pod = self._pod(ns, name, uid)
        if pod is None:
            return
        container = runtime.container_of(pod)
        if fault.kind == "unschedulable":
            msg = "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available."
            self._set_status(ns, name, uid, conditions=[_cond("PodScheduled", "False", "Unschedulable", msg)])
            self.store.add_event(
                pod, reason="FailedScheduling", message=msg, type_="Warning", component="default-scheduler"
            )
            log.info("pod %s/%s unschedulable (fault)", ns, name)
        else:
            image = container.get("image")
            pod["spec"]["nodeName"] = "local-node"
            msg = f'Failed to pull image "{image}": rpc error: code = NotFound desc = manifest unknown'
            self._set_status(
                ns,
                name,
                uid,
                conditions=[_cond("PodScheduled", "True")],
                containerStatuses=[
                    _cstatus(container, {"waiting": {"reason": "ErrImagePull", "message": msg}}, ready=False)
                ],
            )
            self.store.add_event(pod, reason="Failed", message=msg, type_="Warning")
            await asyncio.sleep(2)
            back = f'Back-off pulling image "{image}"'
            self._set_status(
                ns,
                name,
                uid,
                containerStatuses=[
                    _cstatus(
                        container, {"waiting": {"reason": "ImagePullBackOff", "message": back}}, ready=False
                    )
                ],
            )
            self.store.add_event(pod, reason="BackOff", message=back, type_="Warning")
            log.info("pod %s/%s image pull error (fault)", ns, name)
        while self._pod(ns, name, uid) is not None:  # stays Pending until deleted
            await asyncio.sleep(1)

    # -- deletion -------------------------------------------------------------------------------------
    async def delete(self, ns: str, name: str, uid: str, grace: float) -> None:
        """Graceful delete: SIGTERM, SIGKILL after the grace period, then the object goes away."""
        self.deleting.add(uid)
        task = self.supervisors.pop(uid, None)
        if task:
            task.cancel()
        handle = self.handles.get(uid)
        if handle is not None and not handle.done.is_set():
            pod = self._pod(ns, name, uid)
            if pod is not None:
                self.store.add_event(
                    pod,
                    reason="Killing",
                    message=f"Stopping container {runtime.container_of(pod).get('name')}",
                )
            await runtime.stop(handle, self.config, grace=grace)
        self._forget(uid)
        self.store.remove("pods", ns, name)
        self.deleting.discard(uid)

    def _forget(self, uid: str) -> None:
        if self.metadata is not None:
            task = asyncio.get_running_loop().create_task(self.metadata.close(uid))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        handle = self.handles.pop(uid, None)
        self.pumps.pop(uid, None)
        self.supervisors.pop(uid, None)
        if handle:
            import shutil

            shutil.rmtree(handle.workdir or handle.folder, ignore_errors=True)

    async def shutdown(self) -> None:
        """Kill everything this kubelet started."""
        if self._loop_task:
            self._loop_task.cancel()
        for task in list(self.supervisors.values()):
            task.cancel()
        await asyncio.gather(
            *(runtime.stop(h, self.config, grace=2) for h in list(self.handles.values())),
            return_exceptions=True,
        )

    def running(self) -> list[dict[str, Any]]:
        """Containers/processes still alive (for tests: nothing may be left)."""
        return [
            {"uid": h.uid, "name": h.name, "pid": h.pid} for h in self.handles.values() if not h.done.is_set()
        ]


def _running_for(started: str | None) -> float:
    """Seconds since a pod's ``status.startTime`` (0 when unknown): a re-adopted pod keeps its deadline."""
    if not started:
        return 0.0
    try:
        at = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(UTC) - at).total_seconds())


def _cond(type_: str, status: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastTransitionTime": now(),
        "lastProbeTime": None,
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _cstatus(container: dict[str, Any], state: dict[str, Any], *, ready: bool) -> dict[str, Any]:
    return {
        "name": container.get("name", "base"),
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "started": "running" in state,
        "restartCount": 0,
        "state": state,
        "lastState": {},
        "containerID": "local://" + container.get("name", "base"),
    }
