"""The run report and what follows from it: JSON/Markdown/HTML report, notifications, right-sizing.

Owns the report's rows and problems, its HTML page, failure notifications and the sizing history with its
suggestions. May import: :mod:`script_runner.config`, :mod:`script_runner.discover`,
:mod:`script_runner.run` (policy verdicts and ledger records), :mod:`script_runner.exceptions` and itself.
"""

from __future__ import annotations
