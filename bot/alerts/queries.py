"""Reading alerts: one alert, the open ones, those of a bucket, an alert's findings and history.

`AlertService` (bot.alerts.engine) writes alerts and reads through this; code that only shows alerts
(the digest, App Home, `status`) needs nothing more.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils.db import Table

from bot.alerts.codec import finding_dict, finding_from_json
from bot.alerts.lifecycle import OPEN, Alert
from bot.store.database import Store
from detections.base import Finding


class AlertReader:
    """Read-only queries over the alerts, alert_findings and alert_history tables."""

    def __init__(self, store: Store):
        self.store = store

    def _t(self, name: str) -> Table:
        return self.store.db.table(name)

    def get(self, alert_id: int) -> Alert | None:
        rows = list(self._t("alerts").rows_where("id = ?", [alert_id]))
        return Alert.from_row(rows[0]) if rows else None

    def open_alerts(self, *, limit: int | None = None) -> list[Alert]:
        rows = self._t("alerts").rows_where("status IN (?, ?)", list(OPEN), order_by="opened_at desc", limit=limit)
        return [Alert.from_row(r) for r in rows]

    def count_open(self) -> int:
        return self._t("alerts").count_where("status IN (?, ?)", list(OPEN))

    def alerts_for(self, bucket: str | None, account: str | None = None, *, open_only: bool = True
                   ) -> list[Alert]:
        """Alerts on a bucket (None: account-level alerts), newest first."""
        where = ["bucket IS NULL" if bucket is None else "bucket = ?"]
        params: list[Any] = [] if bucket is None else [bucket]
        if account:
            where.append("account = ?")
            params.append(account)
        if open_only:
            where.append("status IN ('open', 'acknowledged')")
        rows = self._t("alerts").rows_where(" AND ".join(where), params, order_by="opened_at desc")
        return [Alert.from_row(r) for r in rows]

    def findings(self, alert_id: int) -> list[dict[str, Any]]:
        """The alert's findings as `scan --format jsonl` dicts, plus added_at and cleared_by."""
        out = []
        for row in self._finding_rows(alert_id):
            data = finding_dict(row["finding"])
            out.append({**data, "added_at": row["added_at"], "cleared_by": row.get("cleared_by")})
        return out

    def finding_objects(self, alert_id: int) -> list[Finding]:
        return [finding_from_json(r["finding"]) for r in self._finding_rows(alert_id)]

    def _finding_rows(self, alert_id: int) -> list[dict[str, Any]]:
        table = self._t("alert_findings")
        return list(table.rows_where("alert_id = ?", [alert_id], order_by="added_at, rowid"))

    def history(self, alert_id: int) -> list[dict[str, Any]]:
        return list(self._t("alert_history").rows_where("alert_id = ?", [alert_id], order_by="id"))
