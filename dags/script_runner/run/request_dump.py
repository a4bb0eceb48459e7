"""The KubernetesPodOperator's debug dump of the pod request, paid only when debug logging is on.

KPO's ``get_or_create_pod`` logs the pod request as YAML at debug level, and builds that YAML (``to_dict``
then the pure-Python ``yaml.safe_dump``) before the log call decides to drop it. With debug off, that is the
largest single cost between "Building pod" and the pod's creation for our requests (env, volumes, security
contexts, labels: 2.6 times the bytes of a bare KPO pod); measured with ``bench/profile_tasks.py``, 16 task
processes sharing two cores. :func:`no_debug_dump` lets the call build an empty document instead while
debug is off; with debug on, the dump is KPO's own, unchanged.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


def _empty_dict() -> dict[str, Any]:
    return {}


def debug_enabled(logger: Any) -> bool:
    """Whether ``logger`` (a stdlib logger on Airflow 2, Airflow 3's structlog logger) emits debug records;
    True when it cannot say."""
    check = getattr(logger, "isEnabledFor", None)
    if check is None:
        return True
    try:
        return bool(check(logging.DEBUG))
    except Exception:  # a logger that cannot answer: keep KPO's behaviour
        return True


@contextmanager
def no_debug_dump(pod_request: Any, logger: Any) -> Iterator[None]:
    """Within the block, ``pod_request.to_dict()`` is ``{}`` unless ``logger`` emits debug records.

    Only the request object's own ``to_dict`` is shadowed (an instance attribute, removed on the way out);
    the request KPO sends is serialized by the API client's ``sanitize_for_serialization``, which does not
    call it.

    :param pod_request: the ``V1Pod`` request about to be created.
    :param logger: the operator's logger.
    """
    if pod_request is None or debug_enabled(logger) or "to_dict" in vars(pod_request):
        yield
        return
    pod_request.to_dict = _empty_dict
    try:
        yield
    finally:
        del pod_request.to_dict
