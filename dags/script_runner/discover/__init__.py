"""Discovery: which scripts exist at run time and what each one asks for.

Owns the sources (gs:// and file://), the selection rules, header reads (ranged, pooled, cached), directive
parsing and resolution into a :class:`~script_runner.discover.spec.ScriptSpec` or a ``Rejected`` with its
fix, ``after=`` dependencies, ``schedule=`` windows, shards and the run scope (``only``/``exclude``). Nothing
here launches a pod. May import: :mod:`script_runner.config`, :mod:`script_runner.exceptions` and itself.
"""

from __future__ import annotations
