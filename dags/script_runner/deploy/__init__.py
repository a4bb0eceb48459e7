"""``script-runner deploy``: install the DAG and settings into a Composer environment or GKE setup.

Owns the deploy plan and its application (``plan``), the environment targets and how their versions are
read (``targets``) and the support table of versions (``versions``). May import:
:mod:`script_runner.config`, :mod:`script_runner.exceptions` and itself.
"""

from __future__ import annotations
