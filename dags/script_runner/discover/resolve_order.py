"""Resolving when a script runs among the others: ``after=`` (its dependencies) and ``schedule=``."""

from __future__ import annotations

from script_runner.discover.resolve_core import ResolverCore


class OrderChecks(ResolverCore):
    """after= paths under the source, and schedule= as a cron expression or preset."""

    def after(self) -> list[str]:
        for ref in self.raw.after:
            if ref.startswith("/") or ref.startswith("gs://") or ".." in ref.split("/"):
                raise self.fail(
                    "after",
                    f"after={ref!r} is not a path under the source",
                    "name scripts relative to the source root, e.g. after=etl/extract.sh,etl/dims/*.sh",
                )
        return [ref.removeprefix("./") for ref in self.raw.after]

    def schedule(self) -> str | None:
        from script_runner.discover.schedule import cron_of

        text = self.raw.values.get("schedule")
        if text is None:
            return None
        try:
            cron_of(text)
        except ValueError as exc:
            raise self.fail(
                "schedule",
                f"schedule={text}: {exc}",
                "write a cron expression (minute hour day month weekday), e.g. schedule=0 6 * * 1, "
                "or a preset: @hourly, @daily, @weekly, @monthly, @yearly",
            ) from exc
        return text.strip()
