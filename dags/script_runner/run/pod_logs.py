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
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.utils.pod_manager import (
    PodLoggingStatus,
    PodManager,
    parse_log_line,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pendulum import DateTime

log = logging.getLogger(__name__)


class _Watched:
    """A log stream that tells its manager when it broke, and drops lines up to ``after``.

    :param lines: the provider's log consumer (an iterable of raw lines).
    :param manager: the manager to tell.
    :param after: drop lines stamped at or before this time (and their continuation lines); None: none.
    """

    def __init__(self, lines: Any, manager: CatchUpPodManager, after: DateTime | None) -> None:
        self.lines, self.manager, self.after = lines, manager, after

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
                yield raw
        except Exception:
            self.manager.stream_broke = True
            raise


class CatchUpPodManager(PodManager):  # type: ignore[misc]
    """KPO's pod manager, reading the end of a log whose stream broke before its container ended."""

    stream_broke = False
    _after: DateTime | None = None

    def read_pod_logs(self, *args: Any, **kwargs: Any) -> Any:
        """The provider's log stream, watched for a break (see the module docstring)."""
        return _Watched(super().read_pod_logs(*args, **kwargs), self, self._after)

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
