"""Runs on upload: which uploaded objects start a run and which scripts that run is for.

Owns the matching rules and the run's conf (``rules``), the Pub/Sub trigger that watches the bucket's
notifications (``trigger``) and the DAG schedule or watcher DAG that wires it (``watch``). May import:
:mod:`script_runner.config`, :mod:`script_runner.discover` (sources and selection),
:mod:`script_runner.exceptions` and itself.
"""

from __future__ import annotations
