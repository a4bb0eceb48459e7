"""Running one script: its pod, its tries, and what each try leaves behind.

Owns the operator (a KubernetesPodOperator subclass), the pod spec, the deferrable trigger, the policies
that sit beside the operator (adoption of a lost try's pod, attempt classification, retry policy, the
worker guard), the plan's check against the current settings, the ledger of attempts and the pod's usage
figures. May import: :mod:`script_runner.config`, :mod:`script_runner.discover` (the spec, dependency verdicts
and identity checks), :mod:`script_runner.exceptions` and itself.
"""

from __future__ import annotations
