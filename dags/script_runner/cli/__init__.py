"""The ``script-runner`` command: ``lint``, ``plan`` and ``deploy`` for script authors and operators.

Owns argument parsing, output and exit codes (``main``) and the checks ``lint`` runs on local files
(``lint``). May import every subpackage except the DAG wiring (:mod:`script_runner.dag`,
:mod:`script_runner.tasks`), which needs Airflow at run time.
"""

from __future__ import annotations
