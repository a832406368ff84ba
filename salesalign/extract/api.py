"""CRM API extractors for `incremental.IncrementalSource`: Salesforce REST (SOQL) and HubSpot CRM v3.

Each yields pages of flat records (one dict per record) changed since a watermark, in change order,
and says which (id, changed_at) version a record is. Paging, retries and errors live here; staging,
watermarks and mapping onto the contract live in `incremental.py`.

Credentials come from an environment variable (a Dagster `EnvVar` on the resource); the token is
sent only in the Authorization header and is masked out of every error message and log line.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from salesalign.extract.sources import SourceError
from salesalign.extract.watermarks import Watermark, parse_ts

log = logging.getLogger(__name__)


class ApiError(SourceError):
    """The API refused or garbled a request; the message names the URL path and what to do."""


class ApiAuthError(ApiError):
    """401/403: the token is missing, expired or lacks permission."""


@dataclass
class HttpClient:
    """JSON over HTTP(S) with retries: 5xx, timeouts and resets back off exponentially, 429 honours
    Retry-After; 401/403 and malformed JSON fail at once with a clear message. Never logs the token."""

    base_url: str
    token: str = field(repr=False)
    token_env: str = "the token environment variable"
    timeout: float = 30.0
    max_retries: int = 5
    backoff: float = 1.0
    max_wait: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    user_agent: str = "salesalign"

    def _mask(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def url(self, path_or_url: str, params: dict[str, str] | None = None) -> str:
        url = (
            path_or_url if "://" in path_or_url else self.base_url.rstrip("/") + "/" + path_or_url.lstrip("/")
        )
        return url + ("?" + urllib.parse.urlencode(params) if params else "")

    def request(self, method: str, path_or_url: str, params: dict | None = None, body: Any = None) -> Any:
        url = self.url(path_or_url, params)
        shown = urllib.parse.urlsplit(url).path  # never the query (it may hold filters) nor the token
        data = json.dumps(body).encode() if body is not None else None
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    payload = resp.read()
                break
            except urllib.error.HTTPError as exc:
                status = exc.code
                if status in (401, 403):
                    raise ApiAuthError(
                        f"{method} {shown}: HTTP {status} "
                        f"({'token rejected or expired' if status == 401 else 'permission denied'}); "
                        f"check {self.token_env}"
                    ) from None
                retryable = status == 429 or status >= 500
                if not retryable or attempt == self.max_retries:
                    detail = self._mask(exc.read()[:300].decode("utf-8", "replace"))
                    raise ApiError(
                        f"{method} {shown}: HTTP {status} after {attempt + 1} attempt(s): {detail}"
                    ) from None
                wait = self._retry_after(exc.headers.get("Retry-After")) if status == 429 else None
                wait = wait if wait is not None else self.backoff * 2**attempt
                log.warning("%s %s: HTTP %s, retrying in %.1f s", method, shown, status, wait)
                self.sleep(min(wait, self.max_wait))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.max_retries:
                    raise ApiError(
                        f"{method} {shown}: {self._mask(str(exc))} after {attempt + 1} attempt(s)"
                    ) from None
                wait = self.backoff * 2**attempt
                log.warning("%s %s: %s, retrying in %.1f s", method, shown, type(exc).__name__, wait)
                self.sleep(wait)
        try:
            return json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(f"{method} {shown}: the response is not valid JSON ({exc})") from None

    @staticmethod
    def _retry_after(value: str | None) -> float | None:
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                return None


def _expect(payload: Any, keys: tuple[str, ...], where: str) -> dict:
    if not isinstance(payload, dict) or any(k not in payload for k in keys):
        raise ApiError(f"{where}: malformed response, expected an object with {', '.join(keys)}")
    return payload


# ------------------------------------------------------------------ the two APIs


@dataclass
class SalesforceApi:
    """SOQL over REST: `GET /services/data/<v>/query?q=...`, then `nextRecordsUrl` until `done`."""

    client: HttpClient
    version: str = "v60.0"
    changed_field: str = "SystemModstamp"

    def pages(self, obj: str, fields: list[str], mark: Watermark) -> Iterator[list[dict]]:
        cols = ", ".join(dict.fromkeys(["Id", self.changed_field, *fields]))
        where = f" WHERE {self.changed_field} >= {mark.changed_at}" if mark.changed_at else ""
        soql = f"SELECT {cols} FROM {obj}{where} ORDER BY {self.changed_field}, Id"
        payload = self.client.request("GET", f"/services/data/{self.version}/query", {"q": soql})
        while True:
            page = _expect(payload, ("records", "done"), f"Salesforce query on {obj}")
            yield [{k: v for k, v in r.items() if k != "attributes"} for r in page["records"]]
            if page["done"] or not page.get("nextRecordsUrl"):
                return
            payload = self.client.request("GET", page["nextRecordsUrl"])

    def record_version(self, record: dict) -> tuple[str, str]:
        return str(record["Id"]), str(record[self.changed_field])


@dataclass
class HubSpotApi:
    """CRM v3: `POST /crm/v3/objects/<object>/search` sorted by `hs_lastmodifieddate`, `after` paging,
    associations from `POST /crm/v3/associations/<object>/<to>/batch/read` (first associated id)."""

    client: HttpClient
    associations: dict[str, list[str]] = field(
        default_factory=lambda: {"deals": ["companies"], "contacts": ["companies"]}
    )
    changed_field: str = "hs_lastmodifieddate"
    page_size: int = 100

    def pages(self, obj: str, fields: list[str], mark: Watermark) -> Iterator[list[dict]]:
        props = [
            f
            for f in dict.fromkeys([self.changed_field, *fields])
            if f != "id" and not f.startswith("associated_")
        ]
        body: dict[str, Any] = {
            "properties": props,
            "sorts": [{"propertyName": self.changed_field, "direction": "ASCENDING"}],
            "limit": self.page_size,
        }
        if mark.changed_at:
            millis = int(parse_ts(mark.changed_at).timestamp() * 1000)
            body["filterGroups"] = [
                {"filters": [{"propertyName": self.changed_field, "operator": "GTE", "value": str(millis)}]}
            ]
        while True:
            payload = _expect(
                self.client.request("POST", f"/crm/v3/objects/{obj}/search", body=body),
                ("results",),
                f"HubSpot search on {obj}",
            )
            records = [self._flatten(r, obj) for r in payload["results"]]
            for to in self.associations.get(obj, []):
                self._associate(obj, to, records)
            yield records
            after = (payload.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return
            body = {**body, "after": after}

    def _flatten(self, record: Any, obj: str) -> dict:
        if (
            not isinstance(record, dict)
            or "id" not in record
            or not isinstance(record.get("properties"), dict)
        ):
            raise ApiError(f"HubSpot search on {obj}: malformed record (expected id and properties)")
        flat = {"id": str(record["id"]), **record["properties"]}
        flat.setdefault(self.changed_field, record.get("updatedAt"))
        return flat

    def _associate(self, obj: str, to: str, records: list[dict]) -> None:
        if not records:
            return
        payload = _expect(
            self.client.request(
                "POST",
                f"/crm/v3/associations/{obj}/{to}/batch/read",
                body={"inputs": [{"id": r["id"]} for r in records]},
            ),
            ("results",),
            f"HubSpot associations {obj} -> {to}",
        )
        first = {}
        for result in payload["results"]:
            targets = sorted(str(t["id"]) for t in result.get("to", []))
            if targets:
                first[str(result["from"]["id"])] = targets[0]
        for r in records:
            r[f"associated_{to}_id"] = first.get(r["id"])

    def record_version(self, record: dict) -> tuple[str, str]:
        return str(record["id"]), str(record[self.changed_field])
