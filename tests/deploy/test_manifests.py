"""The deployment files parse, and say what matters: roles, probes, non-root, resources,
migrations as their own step, selectors that match."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def k8s() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s() if d["kind"] == kind}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    [c] = workload["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def test_every_manifest_parses_and_is_named() -> None:
    docs = k8s()
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "Job",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    }
    assert all(d["metadata"].get("name") for d in docs)


@pytest.mark.parametrize(
    ("name", "args"),
    [("outpaint-jobs-api", ["serve", "--no-workers"]), ("outpaint-jobs-worker", ["worker"])],
)
def test_deployments_run_their_role_with_probes_and_requests(name: str, args: list[str]) -> None:
    deployment = by_kind("Deployment")[name]
    c = container(deployment)
    assert c["args"] == args
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["port"] == c["ports"][0]["name"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    env_from = {next(iter(e.values()))["name"] for e in c["envFrom"]}
    assert env_from == {"outpaint-jobs"}
    assert deployment["spec"]["replicas"] >= 2
    # Labels the selector needs are on the pods.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_worker_outlives_its_stop_grace() -> None:
    worker = by_kind("Deployment")["outpaint-jobs-worker"]
    config = by_kind("ConfigMap")["outpaint-jobs"]["data"]
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(config["STOP_GRACE_SECONDS"])
    assert float(config["LEASE_SECONDS"]) >= 2 * float(config["PROVIDER_TIMEOUT_SECONDS"])


def test_the_edge_limits_the_metrics_token_and_the_admin_key_are_set() -> None:
    """The deployments run with the HTTP edge's limits (below their descriptor limit), a
    METRICS_TOKEN, and a writable place for the first admin key (read-only root on k8s)."""
    edge = {"RECEIVE_HEADERS_SECONDS", "RECEIVE_BODY_SECONDS", "MAX_HEADER_BYTES"}
    config = by_kind("ConfigMap")["outpaint-jobs"]["data"]
    assert edge | {"MAX_CONNECTIONS", "ADMIN_KEY_FILE"} <= set(config)
    assert "METRICS_TOKEN" in by_kind("Secret")["outpaint-jobs"]["stringData"]
    for deployment in by_kind("Deployment").values():
        spec = deployment["spec"]["template"]["spec"]
        [mount] = container(deployment)["volumeMounts"]
        assert config["ADMIN_KEY_FILE"].startswith(mount["mountPath"] + "/")
        assert {v["name"] for v in spec["volumes"]} == {mount["name"]}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for role in ("api", "worker"):
        service = compose["services"][role]
        env = service["environment"]
        assert edge <= set(env) and env["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?")
        assert int(env["MAX_CONNECTIONS"]) < service["ulimits"]["nofile"]


def test_migrations_are_a_job_of_their_own() -> None:
    job = by_kind("Job")["outpaint-jobs-migrate"]
    assert container(job)["args"] == ["migrate"]
    for deployment in by_kind("Deployment").values():
        assert "migrate" not in container(deployment)["args"]


def test_service_and_budgets_select_real_pods() -> None:
    deployments = by_kind("Deployment")
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    service = by_kind("Service")["outpaint-jobs-api"]
    assert (
        service["spec"]["selector"]
        == deployments["outpaint-jobs-api"]["spec"]["template"]["metadata"]["labels"]
    )
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    for pdb in by_kind("PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert sum(selector.items() <= labels.items() for labels in pod_labels) == 1
        assert pdb["spec"]["minAvailable"] >= 1


def test_every_setting_named_in_config_is_a_real_setting() -> None:
    from service.settings import Settings
    from service.store.objects import AWS_VARIABLES

    known = {name.upper() for name in Settings.model_fields} | set(AWS_VARIABLES)
    config = by_kind("ConfigMap")["outpaint-jobs"]["data"]
    secret = by_kind("Secret")["outpaint-jobs"]["stringData"]
    assert set(config) | set(secret) <= known


def test_compose_has_postgres_migrate_api_worker_in_order() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker", "simulator"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for role, command in (("api", ["serve", "--no-workers"]), ("worker", ["worker"])):
        assert services[role]["command"] == command
        assert (
            services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
        assert services[role]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_dockerfile_is_slim_non_root_and_does_not_migrate() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f.endswith("-slim") for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    final = text[text.rindex("FROM ") :]
    assert "COPY migrations" in final and "COPY alembic.ini" in final
    cmd = " ".join(re.findall(r"^(?:CMD|ENTRYPOINT) (.+)$", text, re.M))
    assert "migrate" not in cmd
    assert "HEALTHCHECK" in final


def test_the_simulator_stays_out_of_every_deployment() -> None:
    """deploy/ runs against the real provider: a missing MODELSLAB_API_KEY stops compose
    (it would otherwise mount the simulator), k8s takes it from the Secret, and the
    simulator is only a compose service of its own behind the `simulator` profile."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        if name == "simulator":
            assert service["profiles"] == ["simulator"]
            assert service["command"][0] == "simulator"
            continue
        assert "simulator" not in service.get("command", [])
        env = service.get("environment", {})
        if name != "postgres":
            assert env["MODELSLAB_API_KEY"].startswith("${MODELSLAB_API_KEY:?")
            assert env["PUBLIC_BASE_URL"].startswith("${PUBLIC_BASE_URL:?")
    for doc in k8s():
        if doc["kind"] in ("Deployment", "Job"):
            assert "simulator" not in container(doc)["args"]
    assert by_kind("Secret")["outpaint-jobs"]["stringData"]["MODELSLAB_API_KEY"]
    config = by_kind("ConfigMap")["outpaint-jobs"]["data"]
    assert not any(name.startswith("SIM_") for name in config)


def test_every_data_file_of_the_package_ships_in_the_wheel() -> None:
    """A file under service/ that is not Python must match a package-data pattern, or the
    installed service (the image) would run without it."""
    import fnmatch
    import tomllib

    root = DEPLOY.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["service"]
    data = [
        p.relative_to(root / "service").as_posix()
        for p in (root / "service").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc")
    ]
    assert data
    for path in data:
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path
