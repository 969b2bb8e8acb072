"""``deploy/grafana-dashboard.json`` imports into Grafana and charts only series the bridge exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bridge.store.database import Database
from config.sites import SiteConfig
from widget_server.metrics import SitechatMetrics

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana-dashboard.json"
CONTRACT_METRICS = {
    "sitechat_conversations_started_total",
    "sitechat_conversations_open",
    "sitechat_messages_total",
    "sitechat_outbox_pending",
    "sitechat_delivery_seconds",
    "sitechat_first_response_seconds",
    "sitechat_ratings_total",
    "sitechat_endpoint_up",
    "sitechat_widget_sockets",
}


def exported() -> tuple[set[str], set[str]]:
    """Every series name the bridge exports (with histograms' _bucket, _count, _sum), and the bucket bounds."""
    registry = CollectorRegistry()
    site = SiteConfig(name="Acme", origins=["https://acme.example"], slack_channel="C1")
    SitechatMetrics(registry, Database("sqlite+aiosqlite://"), {"acme": site}, ["slack", "matrix"])
    samples = [s for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples]
    return {s.name for s in samples}, {s.labels["le"] for s in samples if "le" in s.labels}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]


def test_every_expression_names_only_metrics_that_exist_and_every_metric_is_charted() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names, bounds = exported()
    expressions = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    variable_queries = [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    charted: set[str] = set()
    for expr in expressions + variable_queries:
        used = set(re.findall(r"\bsitechat_[a-z_]+\b", expr))
        assert used, f"no sitechat metric in {expr!r}"
        unknown = used - names
        assert not unknown, f"{expr!r} names {unknown}, which the bridge does not export"
        for bound in re.findall(r'le="([^"]+)"', expr):
            assert bound in bounds, f"{expr!r}: no bucket le={bound!r} (buckets: {sorted(bounds, key=float)})"
        charted |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert CONTRACT_METRICS <= names | {"sitechat_delivery_seconds", "sitechat_first_response_seconds"}
    assert CONTRACT_METRICS - charted == set(), "every metric of CONTRACT §9 is charted"
    assert any("histogram_quantile" in e and "first_response" in e for e in expressions)
    assert any("histogram_quantile" in e and "delivery_seconds" in e for e in expressions)
