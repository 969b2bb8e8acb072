"""The files in deploy/ say what the code needs: checked statically (no Docker engine, no cluster here).

- ``deploy/compose.yaml``: two instances built from deploy/Dockerfile on one PostgreSQL, migrated once
  before they start, one reverse proxy (deploy/Caddyfile) in front of both, Synapse as an option.
- ``deploy/kubernetes/``: every manifest valid against the Kubernetes schemas (kubernetes-validate,
  strict: an unknown or misspelt field fails), tied together by kustomization.yaml, with the probes,
  grace period and secret the service needs; the example env file is a configuration sitechat accepts.
- ``deploy/slack-app-manifest.yml``: exactly the bot scopes and events the Slack adapter uses, derived
  from the Web API methods it calls (scopes from Slack's Web API spec) and the listeners it registers
  (scopes from Slack's events spec).
- ``deploy/sitechat.service``: still runs ``sitechat run``.
"""

from __future__ import annotations

import ast
import configparser
import ipaddress
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from slack_sdk.web.async_client import AsyncWebClient

from config.loading import load_settings
from config.settings import Settings
from config.variables import BY_NAME

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
PRODUCT_PACKAGES = ("bridge", "adapters", "widget_server", "config", "sitechat")

#: Slack's Web API description (OpenAPI 2.0; each method's scopes under ``security``): in the workplace's
#: shared specs beside the repository, or vendored next to the events spec if it ever is
WEB_API_SPEC_PLACES = (
    ROOT / "tests" / "fakes" / "specs" / "slack_web_openapi_v2.json",
    ROOT.parent / "shared" / "specs" / "slack_web_openapi_v2.json",
)
#: Slack's events description (AsyncAPI 2.0; each event's scopes under ``x-scopes-required``)
EVENTS_SPEC = ROOT / "tests" / "fakes" / "specs" / "slack_events_api_asyncapi_v2.json"

#: The Web API spec dates from 2020 and names the scopes of classic apps; a Slack app's bot token has
#: the granular scope instead (api.slack.com/scopes).
GRANULAR_SCOPE = {"chat:write:bot": "chat:write", "chat:write:user": "chat:write", "files:write:user": "files:write"}
#: Methods newer than the spec, with their scopes from Slack's method pages.
SCOPES_NOT_IN_SPEC = {
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
}
#: slack-sdk helpers that are several Web API calls
SDK_HELPERS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}
#: A method working on any conversation lists one scope per conversation type; sitechat's threads live in
#: public channels (channels:*) and private ones (groups:*), never in direct messages (im:*, mpim:*).
CONVERSATION_TYPES = {"channels", "groups", "im", "mpim"}
USED_CONVERSATION_TYPES = {"channels", "groups"}
#: post arguments that show someone else's name or picture on a bot post: chat:write.customize
CUSTOMIZING_ARGUMENTS = {"username", "icon_url", "icon_emoji"}


# -- helpers ------------------------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _duration_seconds(value: str | int | float) -> float:
    """Compose durations: ``20s``, ``1m30s``, ``500ms``, or a bare number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _default_shutdown_seconds() -> float:
    return float(Settings.model_fields["shutdown_seconds"].default)


def _dockerfile_uid() -> int:
    users = re.findall(r"^USER\s+(\S+)", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert users, "deploy/Dockerfile sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"deploy/Dockerfile's USER {uid} is not numeric: Kubernetes' runAsNonRoot cannot check it"
    return int(uid)


# -- compose.yaml --------------------------------------------------------------------------------------


#: what `docker compose --env-file .env` would fill ${...} with, for the checks
COMPOSE_VARIABLES = {"POSTGRES_PASSWORD": "secret", "SITECHAT_PUBLIC_URL": "https://chat.acme.example"}


def _interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message}; a required one that is unset fails."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        assert op != ":?", f"compose.yaml needs {name}: {arg}"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", value, text)


@cache
def _compose() -> dict[str, Any]:
    compose = yaml.safe_load(_interpolate((DEPLOY / "compose.yaml").read_text(encoding="utf-8"), COMPOSE_VARIABLES))
    assert isinstance(compose, dict)
    return compose


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _built_here(service: dict[str, Any]) -> bool:
    build = service.get("build") or {}
    return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile" and build.get("context") == ".."


def _apps() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if _built_here(s) and s.get("command") == ["run"]}


def _image(name: str) -> str:
    return str(_services()[name].get("image", ""))


def _one(prefix: str) -> str:
    found = [name for name in _services() if _image(name).startswith(prefix)]
    assert len(found) == 1, f"expected one service from {prefix}, found {found}"
    return found[0]


def _networks(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks") or ["default"]
    return set(networks)


def test_there_is_one_compose_file() -> None:
    names = {p.name for p in DEPLOY.iterdir()}
    compose_files = {n for n in names if re.fullmatch(r"(docker-)?compose(\.\w+)?\.ya?ml", n)}
    assert compose_files == {"compose.yaml"}


def test_compose_runs_two_instances_of_the_image_on_postgresql() -> None:
    apps = _apps()
    assert len(apps) == 2, sorted(apps)
    db = _one("postgres:")
    for name, app in apps.items():
        assert app.get("env_file"), f"{name}: the configuration comes from an env file"
        env = app["environment"]
        url = urlsplit(env["SITECHAT_DATABASE_URL"])
        assert url.scheme == "postgresql+asyncpg" and url.hostname == db and url.port == 5432, url
        assert env["SITECHAT_HOST"] == "0.0.0.0", f"{name} must listen beyond the container's loopback"
        assert not (set(env) - set(BY_NAME)), f"{name}: unknown variables {set(env) - set(BY_NAME)}"
        assert "ports" not in app, f"{name} is reached through the proxy only"
        assert _duration_seconds(app["stop_grace_period"]) > _default_shutdown_seconds(), (
            f"{name}: docker must wait longer than SITECHAT_SHUTDOWN_SECONDS before SIGKILL"
        )
        assert app.get("restart") in ("unless-stopped", "always", "on-failure")


def test_compose_migrates_once_before_the_instances_start() -> None:
    migrate = [name for name, s in _services().items() if _built_here(s) and s.get("command") == ["migrate"]]
    assert len(migrate) == 1, migrate
    job = _services()[migrate[0]]
    assert job.get("restart", "no") == "no"
    db = _one("postgres:")
    assert job["depends_on"][db]["condition"] == "service_healthy"
    assert (
        job["environment"]["SITECHAT_DATABASE_URL"]
        == next(iter(_apps().values()))["environment"]["SITECHAT_DATABASE_URL"]
    )
    for name, app in _apps().items():
        assert app["depends_on"][migrate[0]] == {"condition": "service_completed_successfully"}, name
        assert app["depends_on"][db]["condition"] == "service_healthy", name


def test_compose_services_have_healthchecks() -> None:
    db = _services()[_one("postgres:")]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    data = [v for v in db.get("volumes", []) if str(v).endswith(":/var/lib/postgresql/data")]
    assert data, "PostgreSQL keeps its data in a volume"
    assert data[0].split(":")[0] in (_compose().get("volumes") or {}), "a named volume, declared"
    for name, app in _apps().items():
        check = " ".join(app["healthcheck"]["test"])
        assert "/healthz" in check, f"{name}: liveness is /healthz (readiness, /readyz, is the proxy's)"


def test_compose_has_synapse_with_a_note_on_its_generated_config() -> None:
    synapse = _one("matrixdotorg/synapse")
    assert any(str(v).endswith(":/data") for v in _services()[synapse]["volumes"])
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "synapse generate" in text and "SYNAPSE_SERVER_NAME" in text


def test_compose_has_one_proxy_in_front_of_both_instances() -> None:
    published = [name for name, s in _services().items() if s.get("ports")]
    proxy = _one("caddy:")
    assert published == [proxy], f"only the proxy is published, not {published}"
    mounts = [str(v) for v in _services()[proxy]["volumes"]]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in mounts
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    directive = re.search(r"^\s*reverse_proxy\s+([^{\n]+)\{", caddyfile, re.M)
    assert directive, "the Caddyfile has a reverse_proxy with upstreams"
    upstreams = set(directive.group(1).split())
    apps = _apps()
    assert upstreams == {f"{name}:{app['environment']['SITECHAT_PORT']}" for name, app in apps.items()}
    settings = {
        line.split()[0]: line.split()[1:]
        for line in caddyfile.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert settings["health_uri"] == ["/readyz"], "the proxy sends only to ready instances"
    assert settings["respond"][0] == "/metrics", "metrics are scraped inside the network, not served to the world"
    assert _duration_seconds(settings["stream_timeout"][0]) >= 3600, "WebSockets stay open for long"
    for name, app in apps.items():
        assert _networks(app) & _networks(_services()[proxy]), f"the proxy reaches {name}"


def test_compose_believes_the_proxy_and_only_its_network() -> None:
    proxy = _services()[_one("caddy:")]
    declared = _compose()["networks"]
    for name, app in _apps().items():
        trusted = [ipaddress.ip_network(n.strip()) for n in app["environment"]["SITECHAT_TRUSTED_PROXIES"].split(",")]
        shared = _networks(app) & _networks(proxy)
        for network in shared:
            subnets = [ipaddress.ip_network(c["subnet"]) for c in declared[network]["ipam"]["config"]]
            assert subnets, f"network {network} needs a fixed subnet to be trusted by address"
            for subnet in subnets:
                assert any(subnet.subnet_of(t) for t in trusted if t.version == subnet.version), (name, subnet)
        for t in trusted:
            assert t.is_private and t.prefixlen >= 16, f"{name} trusts {t}: more than the proxy's network"


# -- kubernetes/ ---------------------------------------------------------------------------------------


def _k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _k8s_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in _k8s_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                yield path, doc


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _k8s_objects() if doc["kind"] == kind]


def _only(kind: str) -> dict[str, Any]:
    found = _by_kind(kind)
    assert len(found) == 1, f"one {kind} expected, found {len(found)}"
    return found[0]


def _kustomization() -> dict[str, Any]:
    kustomization: dict[str, Any] = _yaml(K8S / "kustomization.yaml")
    return kustomization


#: the oldest and the newest Kubernetes release whose schemas kubernetes-validate ships
K8S_VERSIONS = sorted({all_versions()[0], kubernetes_validate.latest_version()})


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    objects = list(_k8s_objects())
    assert len(objects) >= 5
    for path, doc in objects:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name}: {doc['kind']} is not valid for Kubernetes {version}: {where}: {exc.message}")


def test_the_validator_would_catch_a_misspelt_field() -> None:
    deployment = json.loads(json.dumps(_only("Deployment")))
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_ties_every_manifest_together() -> None:
    kustomization = _kustomization()
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in _k8s_files()]
    generated = {g["name"]: g for g in kustomization["secretGenerator"]}
    assert generated["sitechat-env"]["envs"] == ["sitechat.env"]
    assert (K8S / "sitechat.env.example").is_file()
    assert "sitechat.env" in (K8S / ".gitignore").read_text(encoding="utf-8").split(), "the secrets stay out of git"
    images = {i["name"] for i in kustomization.get("images", [])}
    for doc in _by_kind("Deployment") + _by_kind("Job"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["image"] in images, f"{container['image']} is set by kustomization.yaml"
            refs = {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
            assert refs == {"sitechat-env"}, f"{doc['metadata']['name']} reads the generated Secret"


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _pod_security(doc: dict[str, Any]) -> None:
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # service links would add SITECHAT_SERVICE_HOST & co. (the Service is named sitechat): refused at start
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsUser"] == _dockerfile_uid(), "the image's own user"
    container = _container(doc)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"]), "resources requested and limited"


def _env_example() -> dict[str, str]:
    values = {}
    for line in (K8S / "sitechat.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_the_deployment_runs_two_ready_instances_that_drain_in_time() -> None:
    deployment = _only("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    container = _container(deployment)
    assert container["args"] == ["run"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    assert port_names[container["readinessProbe"]["httpGet"]["port"]] == int(env["SITECHAT_PORT"])
    assert env["SITECHAT_HOST"] == "0.0.0.0"
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and 0 < float(pre_stop[1]) <= 10, "a short pause before SIGTERM"
    shutdown = float(_env_example().get("SITECHAT_SHUTDOWN_SECONDS", _default_shutdown_seconds()))
    assert pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + shutdown, (
        "the grace period counts from preStop: it must cover the pause and the drain"
    )
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    _pod_security(deployment)


def test_service_pdb_and_ingress_point_at_the_pods() -> None:
    deployment = _only("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _only("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in _container(deployment)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    pdb = _only("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ingress = _only("Ingress")
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600, "WebSockets stay open"
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"]["name"] in service_ports


def test_the_migration_job_runs_sitechat_migrate() -> None:
    job = _only("Job")
    assert _container(job)["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    _pod_security(job)


def test_the_example_env_file_is_a_configuration_sitechat_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("SITECHAT_", "SLACK_", "MATRIX_")):
            monkeypatch.delenv(name)
    for item in _container(_only("Deployment")).get("env", []):
        monkeypatch.setenv(item["name"], item["value"])  # what the pod sets beside the Secret
    settings = load_settings(K8S / "sitechat.env.example")
    assert settings.database_url.startswith("postgresql+asyncpg://"), "several replicas need PostgreSQL"
    assert settings.widget.trusted_proxies, "the ingress controller's X-Forwarded-For must be believed"
    assert settings.widget.public_url.startswith("https://")


# -- slack-app-manifest.yml ----------------------------------------------------------------------------


def _slack_modules() -> list[Path]:
    """The product's modules that talk to Slack: the Slack adapter, and any other importing slack_sdk/slack_bolt."""
    found = set((ROOT / "adapters" / "slack").rglob("*.py"))
    for package in PRODUCT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if re.search(r"^\s*(from|import)\s+slack_(sdk|bolt)\b", path.read_text(encoding="utf-8"), re.M):
                found.add(path)
    return sorted(found)


def _trees() -> Iterator[ast.AST]:
    for path in _slack_modules():
        yield ast.parse(path.read_text(encoding="utf-8"))


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _web_api_methods() -> set[str]:
    """Every Web API method the code calls: ``client.chat_postMessage(...)`` → chat.postMessage."""
    sdk_methods = {name for name in vars(AsyncWebClient) if not name.startswith("_")}
    methods: set[str] = set()
    for tree in _trees():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name == "api_call" and node.args and _literal(node.args[0]):
                methods.add(str(_literal(node.args[0])))
            elif name in SDK_HELPERS:
                methods.update(SDK_HELPERS[name])
            elif name in sdk_methods:
                methods.add(name.replace("_", "."))
    return methods


def _module_strings(tree: ast.AST) -> dict[str, str]:
    """A module's top-level string constants (``COMMAND = "/sitechat"``), so a listener named by one counts."""
    strings: dict[str, str] = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        literal = _literal(value)
        if literal is not None:
            strings[target.id] = literal
    return strings


def _listeners(kind: str) -> set[str]:
    """The names given to ``app.event(...)``, ``app.command(...)``…, as literals or a module's string
    constants (``app.command(COMMAND)``); a catch-all pattern is no name."""
    names: set[str] = set()
    for tree in _trees():
        strings = _module_strings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == kind
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and node.args
            ):
                first = node.args[0]
                literal = _literal(first)
                if literal is None and isinstance(first, ast.Name):
                    literal = strings.get(first.id)
                if literal is not None:
                    names.add(literal)
                elif kind == "action":
                    names.add(ast.unparse(first))  # blocks.CLAIM: a named action id
    return names


def _customizes_posts() -> bool:
    for tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg in CUSTOMIZING_ARGUMENTS:
                return True
            if _literal(node) in CUSTOMIZING_ARGUMENTS:
                return True
    return False


@cache
def _web_api_spec() -> dict[str, Any]:
    for place in WEB_API_SPEC_PLACES:
        if place.is_file():
            spec: dict[str, Any] = json.loads(place.read_text(encoding="utf-8"))
            return spec
    pytest.fail(f"Slack's Web API spec is needed at one of {[str(p) for p in WEB_API_SPEC_PLACES]}")


def _scopes_of_method(method: str) -> set[str]:
    if method in SCOPES_NOT_IN_SPEC:
        return SCOPES_NOT_IN_SPEC[method]
    operations = _web_api_spec()["paths"].get(f"/{method}")
    assert operations, f"{method} is not in Slack's Web API spec: add its scopes to SCOPES_NOT_IN_SPEC"
    listed = {s for op in operations.values() for sec in op.get("security", []) for s in sec.get("slackAuth", [])}
    scopes = {GRANULAR_SCOPE.get(s, s) for s in listed} - {"none"}
    if any(s.split(":")[0] in CONVERSATION_TYPES for s in scopes):  # one scope per conversation type
        scopes = {s for s in scopes if s.split(":")[0] in USED_CONVERSATION_TYPES}
    return scopes


def _subscribed_events() -> set[str]:
    """``message`` → the message events of the conversation types sitechat uses; the rest as named."""
    events = set()
    for name in _listeners("event"):
        if name == "message":
            events.update(f"message.{kind}" for kind in USED_CONVERSATION_TYPES)
        else:
            events.add(name)
    return events


def _scopes_of_event(event: str) -> set[str]:
    channels = json.loads(EVENTS_SPEC.read_text(encoding="utf-8"))["channels"]
    channel = channels.get("slack/events/" + re.sub(r"[._]", "/", event))
    assert channel, f"{event} is not in Slack's events spec"
    return set(channel["subscribe"]["message"]["x-scopes-required"])


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = _yaml(DEPLOY / "slack-app-manifest.yml")
    return manifest


def _needed_scopes() -> dict[str, set[str]]:
    """scope → why (methods, events, features), from the code."""
    why: dict[str, set[str]] = {}
    for method in _web_api_methods():
        for scope in _scopes_of_method(method):
            why.setdefault(scope, set()).add(method)
    for event in _subscribed_events():
        for scope in _scopes_of_event(event):
            why.setdefault(scope, set()).add(f"event {event}")
    if _listeners("command"):
        why.setdefault("commands", set()).update(_listeners("command"))
    if _customizes_posts():
        why.setdefault("chat:write.customize", set()).add("posts with username/icon_url")
    return why


def test_the_adapter_scan_finds_what_the_adapter_does() -> None:
    # a floor, so that a scan that finds nothing cannot pass: the calls sitechat cannot work without
    assert {"auth.test", "chat.postMessage", "chat.update", "users.info"} <= _web_api_methods()
    # the desk (/sitechat answers with links to threads) and !invite (finding a person by name)
    assert {"chat.getPermalink", "users.list"} <= _web_api_methods()
    assert "message" in _listeners("event") and "/sitechat" in _listeners("command")
    assert _scopes_of_method("chat.postMessage") == {"chat:write"}
    assert _scopes_of_method("conversations.history") == {"channels:history", "groups:history"}
    assert _scopes_of_event("message.groups") == {"groups:history"}


def test_the_slack_manifest_asks_for_exactly_the_scopes_the_code_uses() -> None:
    asked = set(_manifest()["oauth_config"]["scopes"]["bot"])
    needed = _needed_scopes()
    missing = {scope: sorted(needed[scope]) for scope in set(needed) - asked}
    assert not missing, f"deploy/slack-app-manifest.yml lacks scopes the code needs: {missing}"
    assert not asked - set(needed), f"scopes nothing in the code uses: {sorted(asked - set(needed))}"
    assert "scopes" not in _manifest()["oauth_config"] or "user" not in _manifest()["oauth_config"]["scopes"]


def test_the_slack_manifest_subscribes_to_exactly_the_events_handled() -> None:
    settings = _manifest()["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == _subscribed_events()


def test_the_slack_manifest_points_slack_at_the_endpoint() -> None:
    manifest = _manifest()
    settings = manifest["settings"]
    commands = manifest["features"]["slash_commands"]
    assert {c["command"] for c in commands} == _listeners("command")
    urls = [settings["event_subscriptions"]["request_url"], *(c["url"] for c in commands)]
    assert settings["interactivity"]["is_enabled"] is bool(_listeners("action")), "the Claim/Close buttons"
    urls.append(settings["interactivity"]["request_url"])
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.path == "/slack/events", url
    assert settings["socket_mode_enabled"] is False, "HTTP mode by default; the comment says how to switch"
    assert "socket" in (DEPLOY / "slack-app-manifest.yml").read_text(encoding="utf-8").lower()


# -- sitechat.service ----------------------------------------------------------------------------------


def test_the_systemd_unit_runs_sitechat_run() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "sitechat.service").read_text(encoding="utf-8"))
    command = unit["Service"]["ExecStart"].split()
    assert Path(command[0]).name == "sitechat" and command[1] == "run", command
    assert command[command.index("--env-file") + 1].startswith("/"), "an absolute env file"
    assert _duration_seconds(unit["Service"]["TimeoutStopSec"] + "s") > _default_shutdown_seconds()
    assert unit["Service"]["User"] != "root"
