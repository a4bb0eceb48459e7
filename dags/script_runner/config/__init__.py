"""Configuration: what the operator decided, typed and validated.

Owns the settings model and how it is loaded (Airflow Variable, environment, presets), the trigger form
(``params``), the constants (label keys, task ids, limits), the Airflow/provider version shims (``compat``),
the platform resource rules of Composer 2/3 and GKE, and unit parsing. Everything else reads its decisions
from here. May import: :mod:`script_runner.exceptions` and itself; nothing of discover, run, report,
upload, deploy or cli.
"""

from __future__ import annotations
