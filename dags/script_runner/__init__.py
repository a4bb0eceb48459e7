"""gcs-script-runner: run the shell scripts of a Composer bucket as one Kubernetes pod each."""

from __future__ import annotations

__version__ = "0.1.0"
