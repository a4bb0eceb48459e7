"""The KubernetesPodOperator's log follower, plus the end of a log it would lose.

KPO follows a pod's log in a loop: when the stream breaks (the API server restarts, a network outage, a
read timeout) it asks whether the container still runs, and only then reads on from its last line. A
container that ended while the stream was down is taken as done, and the lines it printed between the
break and its end are never read: the script's last lines (and the entrypoint's end line) are missing
from the task log, although the container's log still has them.

The entrypoint made this likely: its GCS calls ask the metadata server for a token once per pod, so a pod
whose API server is down or unreachable while its script ends finishes at once (before, its last call
waited for the metadata server, and the pod outlived most outages). Here, after a broken stream of a
container that ended, the log is read once more from the last line seen, and only the later lines are
logged (no line twice). A stream that never broke costs nothing more.

The manager also keeps the last end line (``event=end``, :mod:`script_runner.run.usage`) each pod's
container streamed: the operator reads the pod's usage from it instead of asking the API for the log's end
again (one API call a task fewer).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.utils.pod_manager import (
    PodLoggingStatus,
    PodManager,
    parse_log_line,
)

from script_runner.run import usage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pendulum import DateTime

log = logging.getLogger(__name__)
END_MARK = usage.END_MARK.encode()  # the entrypoint's end line (usage.parse_end_line reads its fields)


class _Watched:
    """A log stream that tells its manager when it broke, and drops lines up to ``after``.

    :param lines: the provider's log consumer (an iterable of raw lines).
    :param manager: the manager to tell.
    :param after: drop lines stamped at or before this time (and their continuation lines); None: none.
    :param key: (pod name, container): where the manager keeps the last end line seen (None: not kept).
    """

    def __init__(
        self,
        lines: Any,
        manager: CatchUpPodManager,
        after: DateTime | None,
        key: tuple[str, str] | None = None,
    ) -> None:
        self.lines, self.manager, self.after, self.key = lines, manager, after, key

    def __iter__(self) -> Iterator[bytes]:
        skipping = False
        try:
            for raw in self.lines:
                if self.after is not None:
                    stamp, _ = parse_log_line(raw.decode("utf-8", errors="replace"))
                    if stamp is not None:
                        skipping = stamp <= self.after
                    if skipping:
                        continue
                if self.key is not None and END_MARK in raw:
                    self.manager.end_lines[self.key] = raw.decode("utf-8", errors="replace")
                yield raw
        except Exception:
            self.manager.stream_broke = True
            raise


class CatchUpPodManager(PodManager):  # type: ignore[misc]
    """KPO's pod manager, reading the end of a log whose stream broke before its container ended."""

    stream_broke = False
    _after: DateTime | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (pod name, container) -> the last end line streamed from it
        self.end_lines: dict[tuple[str, str], str] = {}

    def read_pod_logs(self, pod: Any, container_name: str, *args: Any, **kwargs: Any) -> Any:
        """The provider's log stream, watched for a break and for the end line (see the module docstring)."""
        name = getattr(getattr(pod, "metadata", None), "name", None)
        key = (name, container_name) if isinstance(name, str) else None
        return _Watched(super().read_pod_logs(pod, container_name, *args, **kwargs), self, self._after, key)

    def streamed_end_line(self, pod: Any, container_name: str) -> str | None:
        """The last end line streamed from ``pod``'s container, or None when none was seen.

        :param pod: the pod (its name is used).
        :param container_name: the container.
        """
        return self.end_lines.get((getattr(getattr(pod, "metadata", None), "name", ""), container_name))

    def fetch_container_logs(
        self, pod: Any, container_name: str, *, follow: bool = False, **kwargs: Any
    ) -> PodLoggingStatus:
        """Follow the log as KPO does; then, if its stream broke and the container ended, read the rest.

        :param pod: the pod.
        :param container_name: the container.
        :param follow: follow the log until the container ends.
        """
        self.stream_broke = False
        status: PodLoggingStatus = super().fetch_container_logs(pod, container_name, follow=follow, **kwargs)
        if not (follow and self.stream_broke and not status.running and status.last_log_time):
            return status
        log.info("[runner] the log stream broke before the container ended: reading the rest of its log")
        kwargs["since_time"] = status.last_log_time
        self._after = status.last_log_time
        try:
            rest: PodLoggingStatus = super().fetch_container_logs(pod, container_name, follow=False, **kwargs)
        finally:
            self._after = None
        return PodLoggingStatus(running=False, last_log_time=rest.last_log_time or status.last_log_time)
