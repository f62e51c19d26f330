"""The Prometheus side: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`; Debian's prometheus package, CI installs it), the scrape config
carries the metrics token, and every metric the rules and the Grafana dashboard name is one
the service exposes on /metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import Api

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "outpaint-jobs.json"
NAME = re.compile(r"\b(outpaint_[a-z0-9_]+)")


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_promtool_accepts_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "install Debian's prometheus package (promtool); .ci/run does"
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in done.stdout + done.stderr


def test_each_rule_fires_on_its_failure_and_none_on_a_healthy_hour() -> None:
    """`promtool test rules` on deploy/prometheus/alerts.test.yml, which holds, for every
    rule, series shaped like its failure with the time it fires by (and an earlier one when
    it has not yet), and a healthy hour where no rule fires."""
    promtool = shutil.which("promtool")
    assert promtool, "install Debian's prometheus package (promtool); .ci/run does"
    tests = DEPLOY / "prometheus" / "alerts.test.yml"
    done = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )
    cases = yaml.safe_load(tests.read_text())["tests"]
    rules = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    fired = {
        test["alertname"]
        for case in cases
        for test in case["alert_rule_test"]
        if test["exp_alerts"]
    }
    assert fired == rules  # every rule is shown firing
    healthy = cases[0]
    assert "healthy" in healthy["name"]
    assert {t["alertname"] for t in healthy["alert_rule_test"] if not t["exp_alerts"]} == rules
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:  # each says what to do
            assert len(rule["annotations"]["description"].split()) >= 12, rule["alert"]


def test_the_scrape_config_carries_the_metrics_token(tmp_path: Path) -> None:
    """deploy/prometheus/prometheus.yml passes promtool (with its token file in place) and
    scrapes with a bearer token; the PodMonitor takes the same token from the Secret."""
    promtool = shutil.which("promtool")
    assert promtool, "install Debian's prometheus package (promtool); .ci/run does"
    source = DEPLOY / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(source.read_text())
    token_file = "/etc/prometheus/outpaint-metrics-token"
    for job in config["scrape_configs"]:
        assert job["authorization"] == {"type": "Bearer", "credentials_file": token_file}
    (tmp_path / "token").write_text("a-token")
    (tmp_path / "alerts.yml").write_text(RULES.read_text())
    checked = tmp_path / "prometheus.yml"
    checked.write_text(source.read_text().replace(token_file, str(tmp_path / "token")))
    done = subprocess.run(
        [promtool, "check", "config", str(checked)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [monitor] = [
        d for d in yaml.safe_load_all((DEPLOY / "k8s" / "podmonitor.yaml").read_text()) if d
    ]
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["authorization"]["credentials"] == {
        "name": "outpaint-jobs",
        "key": "METRICS_TOKEN",
    }


def test_the_rules_cover_what_matters() -> None:
    alerts = " ".join(rule_expressions())
    for metric in (
        "outpaint_sweeper_lag_seconds",
        "outpaint_jobs_overdue",
        "outpaint_provider_inflight_limit",
        "outpaint_jobs_oldest_queued_seconds",
        "outpaint_output_store_errors_total",
        'status="failing"',
        "min_over_time(max(outpaint_provider_circuit_state)[1m:15s])",
        'kind!="rate_limited"',
        'kind="rate_limited"',
        'via="webhook"',
        'status="dead"',
        "outpaint_database_up",
    ):
        assert metric in alerts, metric


async def test_every_metric_named_exists_on_metrics(api: Api) -> None:
    exposed = (await api.client.get("/metrics")).text
    families = set(re.findall(r"^# TYPE (\S+) ", exposed, re.M))
    named = {n for e in rule_expressions() + dashboard_expressions() for n in NAME.findall(e)}
    assert named  # the files name metrics at all

    def exists(name: str) -> bool:
        stems = [name] + [name.removesuffix(s) for s in ("_bucket", "_sum", "_count")]
        return any(stem in families for stem in stems)

    missing = sorted(n for n in named if not exists(n))
    assert not missing, f"named in deploy/ but not on /metrics: {missing}"
