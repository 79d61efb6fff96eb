"""Deploy: the production instance on a real Postgres, and the whole platform end to end
through dagster-webserver + dagster-daemon, driven over GraphQL like a user in the UI."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml

from image_assets.catalog.kits_csv import parse_csv
from image_assets.demo.images import ImageSpec, render_image
from image_assets_tests import postgres
from image_assets_tests.processes import free_port

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def pg():
    try:
        cluster = postgres.start()
    except postgres.Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield cluster
    cluster.stop()


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return home


def test_production_instance_loads_on_postgres(pg, tmp_path, monkeypatch):
    from dagster import DagsterInstance
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    home = _home(tmp_path)
    for key, value in pg.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.get_runs() == []


def test_compose_file_matches_the_compose_specification(tmp_path):
    """deploy/docker-compose.yml against the Compose specification's JSON schema (the
    copy check-jsonschema ships), without a Docker engine; a broken file is caught."""
    compose = DEPLOY / "docker-compose.yml"

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TOOLS_BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path],
            capture_output=True,
            text=True,
        )

    result = check(compose)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = yaml.safe_load(compose.read_text())
    first = next(iter(broken["services"].values()))
    first["restart"] = {"always": True}  # the spec wants a string
    (tmp_path / "compose.yml").write_text(yaml.safe_dump(broken))
    refused = check(tmp_path / "compose.yml")
    assert refused.returncode == 1 and "restart" in refused.stdout


class GraphQL:
    def __init__(self, url: str):
        self.url = url

    def __call__(self, query: str, **variables) -> dict:
        response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def runs(self) -> list[dict]:
        data = self(
            "{ runsOrError(limit: 50) { ... on Runs { results { runId jobName status tags { key value } } } } }"
        )
        return data["runsOrError"]["results"]


def _wait(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_platform_end_to_end_on_webserver_and_daemon(pg, demo_server, tmp_path):
    home = _home(tmp_path)
    data = tmp_path / "data"
    port = free_port()
    env = {
        **os.environ,
        **pg.env,
        "DAGSTER_HOME": str(home),
        "IMAGE_ASSETS_DATA_DIR": str(data),
        "IMAGE_ASSETS_DEMO_URL": demo_server.base_url,
        "IMAGE_ASSETS_PROFILE": "local",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = contextlib.ExitStack()  # the log files live as long as the processes
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "workspace.yaml",
            ],
            cwd=REPO,
            env=env,
            stdout=stack.enter_context(open(logs / "webserver.log", "w")),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=stack.enter_context(open(logs / "daemon.log", "w")),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        gql = GraphQL(f"http://127.0.0.1:{port}/graphql")

        def webserver_up():
            try:
                return (
                    httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200
                )
            except httpx.HTTPError:
                return False

        _wait(webserver_up, 120, "dagster-webserver")
        workspace = gql(
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
            "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
        )["workspaceOrError"]["locationEntries"]
        assert [(e["loadStatus"], e["locationOrLoadError"]["__typename"]) for e in workspace] == [
            ("LOADED", "RepositoryLocation")
        ]
        location = workspace[0]["name"]

        backfill = gql(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
            "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
            p={
                "selector": {
                    "partitionSetName": "vendor_catalog_job_partition_set",
                    "repositorySelector": {
                        "repositoryName": "__repository__",
                        "repositoryLocationName": location,
                    },
                },
                "partitionNames": ["estes", "loc", "rocketarium"],
            },
        )["launchPartitionBackfill"]
        assert backfill["__typename"] == "LaunchBackfillSuccess", backfill

        def vendor_runs_done():
            runs = [r for r in gql.runs() if r["jobName"] == "vendor_catalog_job"]
            finished = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            return runs if len(runs) == 3 and len(finished) == 3 else None

        runs = _wait(vendor_runs_done, 420, "the backfill's three runs")
        assert {r["status"] for r in runs} == {"SUCCESS"}, runs
        for vendor in ("estes", "loc", "rocketarium"):
            rows = parse_csv((data / "raw" / "kits" / f"{vendor}_kits.csv").read_bytes())
            assert len(rows) == len(demo_server.httpd.sites.products[vendor])

        launched = gql(
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
            "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }",
            p={
                "selector": {
                    "jobName": "catalog_job",
                    "repositoryName": "__repository__",
                    "repositoryLocationName": location,
                }
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        _wait(
            lambda: any(r["runId"] == run_id and r["status"] == "SUCCESS" for r in gql.runs()),
            240,
            "catalog_job",
        )
        with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
            assert con.execute("select count(*) from clean_kits").fetchone()[0] == 24

        incoming = data / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        dropped = incoming / "customer photo.jpg"
        dropped.write_bytes(render_image(ImageSpec("e2e", 900, 600, orientation=6)))
        os.utime(dropped, (time.time() - 10, time.time() - 10))

        def upload_done():
            return [
                r
                for r in gql.runs()
                if r["jobName"] == "upload_job" and r["status"] in ("SUCCESS", "FAILURE")
            ]

        (upload,) = _wait(upload_done, 240, "the sensor-triggered upload run")
        assert upload["status"] == "SUCCESS"
        assert {"key": "image_assets/kind", "value": "upload"} in upload["tags"]
        (row,) = (data / "raw/audit/uploads").iterdir()  # keyed by upload id, not by name
        audit = json.loads(row.read_text())
        assert audit["status"] == "processed" and audit["renditions"] == 10
        assert audit["original_name"] == "customer photo.jpg" and audit["key"] == row.stem
    except BaseException:
        for name in ("webserver.log", "daemon.log"):
            print(f"--- {name} ---\n" + (logs / name).read_text()[-4000:])
        raise
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.close()


def test_ecs_run_launcher_config_matches_dagster_aws_schema(monkeypatch):
    import yaml
    from dagster._config import process_config
    from dagster._config.field_utils import convert_potential_field
    from dagster_aws.ecs import EcsRunLauncher

    monkeypatch.setenv(
        "IMAGE_ASSETS_RUN_TASK_ROLE_ARN", "arn:aws:iam::123456789012:role/image-assets-run"
    )
    monkeypatch.setenv(
        "IMAGE_ASSETS_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/image-assets-execution"
    )
    launcher = yaml.safe_load((REPO / "deploy/ecs/dagster.yaml").read_text())["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    result = process_config(
        convert_potential_field(EcsRunLauncher.config_type()).config_type, launcher["config"]
    )
    assert result.success, [error.message for error in result.errors]
    task = json.loads((REPO / "deploy/ecs/task-definition.json").read_text())
    assert task["containerDefinitions"][0]["name"] == launcher["config"]["container_name"]
    policy = json.loads((REPO / "deploy/ecs/iam-policy.json").read_text())
    # "*" only where AWS has no resource-level permission (parliament checks the rest)
    starred = [s["Action"] for s in policy["Statement"] if s["Resource"] == "*"]
    assert starred == [["ecs:DescribeTaskDefinition"]]
    assert all(s["Action"] != "*" for s in policy["Statement"])


def test_the_run_queue_has_one_source():
    """deploy/run-queue.yaml is copied into deploy/dagster.yaml and the Helm values by
    ``make deploy-config``; both copies equal the source, and a stale copy is caught."""
    source = yaml.safe_load((DEPLOY / "run-queue.yaml").read_text())["concurrency"]
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]
    helm = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert instance == source == helm["additionalInstanceConfig"]["concurrency"]
    assert "config" not in helm["dagsterDaemon"]["runCoordinator"]  # no second set of limits
    check = subprocess.run(
        [sys.executable, str(DEPLOY / "sync_run_queue.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout

    # the check bites: a copy of deploy/ whose source says 12
    copy = Path(tempfile.mkdtemp())
    shutil.copytree(DEPLOY, copy / "deploy")
    changed = copy / "deploy" / "run-queue.yaml"
    changed.write_text(
        changed.read_text().replace("max_concurrent_runs: 10", "max_concurrent_runs: 12")
    )
    script = copy / "deploy" / "sync_run_queue.py"
    stale = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "deploy/dagster.yaml" in stale.stdout
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    synced = yaml.safe_load((copy / "deploy" / "helm" / "values.yaml").read_text())
    assert synced["additionalInstanceConfig"]["concurrency"]["runs"]["max_concurrent_runs"] == 12
    shutil.rmtree(copy)


def _iam_findings(text: str) -> list[tuple[str, str, str]]:
    """parliament's findings on a policy template rendered as a deployer would."""
    from parliament import analyze_policy_string, enhance_finding

    for placeholder, value in {
        "${AWS_REGION}": "eu-west-1",
        "${AWS_ACCOUNT_ID}": "123456789012",
        "${PREFIX}": "image-assets",
    }.items():
        text = text.replace(placeholder, value)
    policy = analyze_policy_string(text)
    return [
        (f.severity, f.issue, str(f.detail)) for f in (enhance_finding(f) for f in policy.findings)
    ]


def test_the_ecs_iam_policy_passes_parliament():
    """Conditions on actions that do not support them make AWS deny the action: the run
    launcher could not register or tag its tasks. parliament knows which keys each
    action supports."""
    assert _iam_findings((DEPLOY / "ecs" / "iam-policy.json").read_text()) == []
    # the check bites: the shape the policy had before
    broken = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ecs:RunTask", "ecs:RegisterTaskDefinition", "ecs:TagResource"],
                "Resource": "*",
                "Condition": {"ArnEquals": {"ecs:cluster": "arn:aws:ecs:eu-west-1:1:cluster/x"}},
            }
        ],
    }
    issues = {issue for severity, issue, _ in _iam_findings(json.dumps(broken))}
    assert "UNKNOWN_CONDITION_FOR_ACTION" in issues


TOOLS_BIN = Path(sys.executable).parent  # check-jsonschema is a dev dependency
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"  # its own environment: make tools


def pod_specs(values: dict) -> list[dict]:
    """The Kubernetes objects the Dagster chart makes from the parts of our values that
    we set: the code location's Deployment and a run's Job (image, pull policy,
    security contexts, resources, probes). Everything else is the chart's."""
    specs = []
    for deployment in values["dagster-user-deployments"]["deployments"]:
        image = deployment["image"]
        container = {
            "name": deployment["name"],
            "image": f"{image['repository']}:{image['tag']}",
            "imagePullPolicy": image.get("pullPolicy", "Always"),
            "args": ["dagster", "api", "grpc", *deployment.get("dagsterApiGrpcArgs", [])],
            "ports": [{"containerPort": deployment["port"]}],
            "resources": deployment.get("resources", {}),
            "securityContext": deployment.get("securityContext", {}),
            **{k: deployment[k] for k in ("readinessProbe", "livenessProbe") if k in deployment},
        }
        labels = {"app": deployment["name"]}
        specs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": deployment["name"], "namespace": "image-assets"},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "securityContext": deployment.get("podSecurityContext", {}),
                            "containers": [container],
                        },
                    },
                },
            }
        )
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run = launcher.get("runK8sConfig", {})
    worker = {
        "name": "dagster-run",
        "image": specs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "imagePullPolicy": launcher.get("imagePullPolicy", "IfNotPresent"),
        "args": ["dagster", "api", "execute_run"],
        **run.get("containerConfig", {}),
    }
    pod = {**run.get("podSpecConfig", {}), "restartPolicy": "Never", "containers": [worker]}
    specs.append(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "dagster-run", "namespace": "image-assets"},
            "spec": {"template": {"spec": pod}},
        }
    )
    return specs


def _checkov(folder: Path) -> subprocess.CompletedProcess[str]:
    if not CHECKOV.is_file():
        if os.environ.get("CI"):
            pytest.fail("checkov is missing: make test installs it (make tools)")
        pytest.skip("checkov is not installed here: make tools")
    return subprocess.run(
        [CHECKOV, "-d", folder, "--config-file", DEPLOY / "checkov.yaml"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )


def test_the_dockerfile_and_pod_specs_pass_checkov(tmp_path):
    """checkov on deploy/Dockerfile and the pod specs the Helm values give; the checks
    deploy/checkov.yaml waives each say why."""
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    shutil.copy(DEPLOY / "Dockerfile", tmp_path / "Dockerfile")
    (tmp_path / "pods.yaml").write_text(yaml.safe_dump_all(pod_specs(values)))
    shutil.copy(DEPLOY / "k8s" / "image-service.yaml", tmp_path / "image-service.yaml")
    shutil.copy(DEPLOY / "cloudfront" / "image-service.yaml", tmp_path / "cloudfront.yaml")
    result = _checkov(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for framework in ("dockerfile", "kubernetes", "cloudformation"):
        assert f"{framework} scan results" in result.stdout
    failed = [int(n) for n in re.findall(r"Failed checks: (\d+)", result.stdout)]
    assert len(failed) == 3 and set(failed) == {0}, result.stdout[-3000:]

    # the check bites: a run worker that may escalate, an image without a user
    values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"].pop(
        "securityContext"
    )
    (tmp_path / "pods.yaml").write_text(yaml.safe_dump_all(pod_specs(values)))
    dockerfile = (DEPLOY / "Dockerfile").read_text().replace("USER dagster\n", "")
    (tmp_path / "Dockerfile").write_text(dockerfile)
    refused = _checkov(tmp_path)
    assert refused.returncode == 1
    assert "CKV_K8S_20" in refused.stdout and "CKV_DOCKER_3" in refused.stdout


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !If, ...) read as plain values."""


_CfnLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)
    ),
)


def test_cloudfront_caches_on_the_path_and_accept_only():
    """The CDN in front forwards what the answer depends on, nothing else: the path
    (transformation and public id) and Accept (f_auto); no cookies, no query strings."""
    template = yaml.load((DEPLOY / "cloudfront" / "image-service.yaml").read_text(), _CfnLoader)
    resources = template["Resources"]
    policy = resources["ImageCachePolicy"]["Properties"]["CachePolicyConfig"]
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["Accept"]}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert policy["MaxTTL"] == 31536000  # versioned URLs are immutable for a year
    behavior = resources["Distribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"


def test_the_image_service_runs_beside_dagster_everywhere():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    images = compose["services"]["images"]
    assert images["command"][:2] == ["image-assets", "serve"] and images["ports"] == ["8090:8090"]
    assert images["volumes"] == ["data:/opt/dagster/data:ro"]
    manifest = list(yaml.safe_load_all((DEPLOY / "k8s" / "image-service.yaml").read_text()))
    (deployment,) = [m for m in manifest if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["image-assets", "serve"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["IMAGE_ASSETS_DELIVERY_STRICT"] == "1" and "IMAGE_ASSETS_DELIVERY_SECRET" not in env


SHARED_HELM_SCHEMA = REPO.parent / "shared" / "reference" / "dagster-helm-values.schema.json"


@pytest.mark.skipif(
    not SHARED_HELM_SCHEMA.is_file(), reason="the chart's values schema lives in ../shared"
)
def test_helm_values_follow_the_dagster_chart_schema():
    """deploy/helm/values.yaml against the official chart's values.schema.json (offline:
    its references to kubernetesjsonschema.dev are taken as plain objects)."""
    from jsonschema import Draft7Validator

    def offline(node: object) -> object:
        """The schema with every kubernetesjsonschema.dev reference taken as anything, and
        without ``required``: Helm validates the chart's defaults merged with these values,
        and the defaults are not here; every key and value we set is still checked."""
        if isinstance(node, dict):
            if str(node.get("$ref", "")).startswith("https://kubernetesjsonschema.dev"):
                return {}
            return {k: offline(v) for k, v in node.items() if k != "required"}
        if isinstance(node, list):
            return [offline(v) for v in node]
        return node

    schema = offline(json.loads(SHARED_HELM_SCHEMA.read_text()))
    assert "kubernetesjsonschema.dev" not in json.dumps(schema)
    validator = Draft7Validator(schema)
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    values["dagsterDaemon"]["runCoordinator"]["type"] = "FastRunCoordinator"  # the check bites
    assert any(validator.iter_errors(values))
