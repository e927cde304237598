"""Conformance: Microsoft's own Python SDK clients against `sentinel-bridge workspace`.

LogsIngestionClient.upload sends rows; LogsQueryClient.query_workspace reads them back. Both talk plain HTTP to
the workspace on loopback, so each call passes enforce_https=False. Exits non-zero on any mismatch.
Usage: python sdk_roundtrip.py <workspace-url> <workspace-id>
"""
import datetime
import json
import sys
import time
import urllib.parse
import urllib.request

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.query import LogsQueryClient, LogsQueryStatus

URL, WORKSPACE_ID = sys.argv[1], sys.argv[2]


class LoopbackCredential:
    """The client-credentials grant against the workspace's token endpoint (azure-identity insists on https)."""

    def get_token(self, *scopes, **kwargs):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": "sdk-conformance",
            "client_secret": "sdk-conformance-secret", "scope": scopes[0],
        }).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{URL}/conformance/oauth2/v2.0/token", data=form)) as r:
            body = json.load(r)
        return AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


cred = LoopbackCredential()
ingest = LogsIngestionClient(endpoint=URL, credential=cred)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
rows = [
    {"TimeGenerated": (now - datetime.timedelta(minutes=i)).isoformat(), "EventType": "interaction.policy_violated",
     "PlatformId": platform, "RiskScore": score, "UserId": "alice@acme.fr", "EventId": f"sdk-{i}",
     "Classifications": [{"type": "EMAIL", "score": 0.98}], "PolicyDecisions": [{"action": "block"}]}
    for i, (platform, score) in enumerate([("chatgpt", 0.95), ("deepseek", 0.5), ("chatgpt", 0.25)])
]
ingest.upload(rule_id="dcr-sdkconformance", stream_name="Custom-NoxysEvents_CL", logs=rows, enforce_https=False)
# A standard table the Logs Ingestion API may target (SecurityEvent); SigninLogs is written by Entra ID alone.
ingest.upload(rule_id="dcr-sdkconformance", stream_name="Microsoft-SecurityEvent", enforce_https=False, logs=[
    {"TimeGenerated": now.isoformat(), "Computer": "web-01", "EventID": 4625, "LogonType": 10, "IpAddress": "203.0.113.9",
     "TargetUserName": "administrator"}])
refused = []
ingest.upload(rule_id="dcr-sdkconformance", stream_name="Microsoft-SigninLogs", enforce_https=False,
              logs=[{"TimeGenerated": now.isoformat(), "UserPrincipalName": "alice@acme.fr"}], on_error=lambda e: refused.append(e))
check(len(refused) == 1 and "InvalidStream" in str(refused[0].error), "a table the API may not target is refused as Azure refuses it")

# The SDK's chunking: many rows in several ≤1 MiB calls.
many = [{"TimeGenerated": now.isoformat(), "EventType": "interaction.created", "EventId": f"bulk-{i}", "PlatformId": "x" * 500}
        for i in range(3000)]
ingest.upload(rule_id="dcr-sdkconformance", stream_name="Custom-NoxysEvents_CL", logs=many, enforce_https=False)

errors = []
ingest.upload(rule_id="dcr-sdkconformance", stream_name="Custom-NoSuch_CL", logs=[{"a": 1}], enforce_https=False,
              on_error=lambda e: errors.append(e))
check(len(errors) == 1 and "InvalidStream" in str(errors[0].error), "an undeclared stream fails with Azure's error code")

# The SDK derives the token audience from a custom endpoint; the workspace wants the real audience.
query = LogsQueryClient(credential=cred, endpoint=f"{URL}/v1", audience="https://api.loganalytics.io")
res = query.query_workspace(
    WORKSPACE_ID,
    "NoxysEvents_CL | where EventId startswith 'sdk-' | project TimeGenerated, PlatformId, RiskScore, Classifications, EventId | order by EventId asc",
    timespan=datetime.timedelta(days=1), enforce_https=False)
check(res.status == LogsQueryStatus.SUCCESS, "query succeeded")
table = res.tables[0]
check([c for c in table.columns] == ["TimeGenerated", "PlatformId", "RiskScore", "Classifications", "EventId"], f"columns {table.columns}")
check(list(table.columns_types) == ["datetime", "string", "real", "dynamic", "string"], f"column types {table.columns_types}")
check(len(table.rows) == 3, "three rows came back")
first = table.rows[0]
check(isinstance(first["TimeGenerated"], datetime.datetime) and first["TimeGenerated"] == now, f"datetime value {first['TimeGenerated']!r}")
check(first["PlatformId"] == "chatgpt" and first["RiskScore"] == 0.95, "string and real values")
check(json.loads(first["Classifications"])[0]["type"] == "EMAIL", "dynamic value as JSON text")

res = query.query_workspace(WORKSPACE_ID, "NoxysEvents_CL | summarize n = count() by PlatformId | order by n desc",
                            timespan=None, enforce_https=False)
counts = {r["PlatformId"]: r["n"] for r in res.tables[0].rows}
check(counts.get("x" * 500) == 3000 and counts.get("chatgpt") == 2, f"summarize by platform {dict(list(counts.items())[:3])}")

res = query.query_workspace(WORKSPACE_ID, "SecurityEvent | project Computer, EventID, LogonType, IpAddress",
                            timespan=datetime.timedelta(hours=1), enforce_https=False)
row = res.tables[0].rows[0]
check(row["EventID"] == 4625 and row["LogonType"] == 10 and row["IpAddress"] == "203.0.113.9", "standard table values and types")

try:
    query.query_workspace(WORKSPACE_ID, "NoxysEvents_CL | evaluate bag_unpack(Classifications)", timespan=None, enforce_https=False)
    check(False, "an unsupported operator raises")
except HttpResponseError as e:
    check(e.status_code == 400 and "BadArgumentError" in str(e) and "evaluate" in str(e), "an unsupported operator is a 400 BadArgumentError naming it")
print("sdk conformance: all checks passed")
