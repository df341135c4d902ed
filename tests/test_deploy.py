"""Static checks of the docker-compose deployment.

Covers Dockerfile, docker-compose.yml (with its MinIO object storage), .env.example,
deploy/dagster.prod.yaml and the workspace files in deploy/. There is no Docker engine where these
tests run, so `docker compose config`, `docker build` and starting the stack are not available:
these tests check instead what can be checked without them: the files parse, reference each other
consistently (service names, ports, paths, volume and network names, variables), every command
line parses with the installed Dagster CLIs, the one-shot MinIO setup script runs in a real shell
(with a stand-in `mc`), and the instance file passes Dagster's own instance-config schema.
dagster-postgres and dagster-docker are not installed in this virtualenv, so their classes are
never loaded; the DockerRunLauncher config is checked against a copy of its schema (the real one
when the package is installed).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import dagster as dg
import pytest
import yaml
from dagster._config import Array, Field, Permissive, Shape, StringSource, process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator, RunCoordinator
from dagster._core.storage.config import pg_config
from dagster._core.workspace.config_schema import ensure_workspace_config
from dagster._serdes.config_class import class_from_code_pointer

from podcast_core import settings as settings_module

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DEPLOY = REPO / "deploy"
PROD_INSTANCE = DEPLOY / "dagster.prod.yaml"
DEV_INSTANCE = REPO / "dagster.yaml"
VENV_BIN = Path(sys.executable).parent

SERVICES = {"postgres", "minio", "minio_init", "user_code", "user_code_gpu", "webserver", "daemon"}
APP_SERVICES = SERVICES - {"postgres", "minio", "minio_init"}
CODE_SERVERS = {"user_code": "workspace.docker.yaml", "user_code_gpu": "workspace.gpu.yaml"}
SHARED_INSTANCE_BLOCKS = ("concurrency", "run_monitoring", "run_retries")
POSTGRES_VARS = {f"DAGSTER_POSTGRES_{p}" for p in ("USER", "PASSWORD", "HOST", "DB", "PORT")}
# S3ComputeLogManager's config ({env: ...}) and the standard AWS credentials boto3 reads.
COMPUTE_LOG_VARS = {"DAGSTER_COMPUTE_LOGS_BUCKET", "DAGSTER_COMPUTE_LOGS_PREFIX"}
AWS_VARS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
# What every process that loads the instance needs besides Postgres (the endpoint is shared with
# the artifact store's setting).
INSTANCE_S3_VARS = COMPUTE_LOG_VARS | AWS_VARS | {"PODCAST_S3_ENDPOINT_URL"}
# Compose settings that deliberately differ from the code's defaults: artifacts on MinIO.
COMPOSE_OVERRIDES = {
    "PODCAST_ARTIFACT_ROOT": ("artifact_root", "s3://podcast/artifacts"),
    "PODCAST_S3_ENDPOINT_URL": ("s3_endpoint_url", "http://minio:9000"),
}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY)$", re.IGNORECASE)
PLACEHOLDERS = {"", "change-me"}
SECRET_VALUE_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),  # OpenAI-style API key
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub token
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"postgres(?:ql)?://[^:\s/]+:[^@\s{$]+@"),  # URL with an inline password
]
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; $$ is a literal $.
INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)
BARE_VARIABLE = re.compile(r"(?<!\$)\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")

# dagster_docker.utils.DOCKER_CONFIG_SCHEMA (dagster-docker 0.29): the DockerRunLauncher config.
DOCKER_LAUNCHER_SCHEMA = {
    "image": Field(StringSource, is_required=False),
    "network": Field(StringSource, is_required=False),
    "registry": Field(
        {
            "url": Field(StringSource),
            "username": Field(StringSource),
            "password": Field(StringSource),
        },
        is_required=False,
    ),
    "env_vars": Field([str], is_required=False),
    "container_kwargs": Field(Permissive(), is_required=False),
    "networks": Field(Array(StringSource), is_required=False),
}
# Keyword arguments of docker.types.DeviceRequest, which docker-py builds from a dict.
DEVICE_REQUEST_KWARGS = {"driver", "count", "device_ids", "capabilities", "options"}


# ------------------------------------------------------------------------------------- helpers


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example:{number}: not KEY=VALUE: {raw!r}"
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f".env.example:{number}: bad name {key!r}"
        assert key not in values, f".env.example: {key} is set twice"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE_FILE)


def _service(name: str) -> dict[str, Any]:
    return _compose()["services"][name]


def _interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Resolve compose interpolation like `docker compose config` would, given ``env``."""
    env = {} if env is None else env

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        if op in (":?", "?"):
            if unset_or_empty:
                raise AssertionError(f"required variable {name} is unset: {arg}")
            return value
        if op is None:
            return value or ""
        raise AssertionError(f"unsupported interpolation {match[0]!r}")

    return INTERPOLATION.sub(replace, text).replace("$$", "$")


def _resolve(value: Any, env: dict[str, str] | None = None) -> Any:
    if isinstance(value, str):
        return _interpolate(value, env)
    if isinstance(value, list):
        return [_resolve(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item, env) for key, item in value.items()}
    return value


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)


def _instance_env_vars(value: Any) -> set[str]:
    """Every VAR in a ``{env: VAR}`` of an instance/workspace yaml."""
    found: set[str] = set()
    if isinstance(value, dict):
        if set(value) == {"env"}:
            found.add(value["env"])
        for item in value.values():
            found |= _instance_env_vars(item)
    elif isinstance(value, list):
        for item in value:
            found |= _instance_env_vars(item)
    return found


def _required_env() -> dict[str, str]:
    """The smallest .env: only the variables compose requires (${VAR:?...}), from .env.example."""
    required = {
        m["name"]
        for text in _strings(_compose())
        for m in INTERPOLATION.finditer(text)
        if m["op"] == ":?"
    }
    return {name: _env_example()[name] for name in required}


def _environment(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's `environment`, resolved with ``env`` (default: only the required variables)."""
    raw = _service(service).get("environment", {})
    assert isinstance(raw, dict), f"{service}: write environment as a mapping"
    env = _required_env() if env is None else env
    return {key: str(_resolve(value, env)) for key, value in raw.items()}


def _command(service: str, env: dict[str, str] | None = None) -> list[str]:
    command = _service(service)["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    env = _required_env() if env is None else env
    return [_interpolate(arg, env) for arg in argv]


def _mounts(service: str) -> dict[str, str]:
    """A service's volume mounts, resolved with .env.example: {source: target}."""
    mounts = {}
    for mount in _service(service).get("volumes", []):
        source, target, *_ = _interpolate(mount, _env_example()).split(":")
        mounts[source] = target
    return mounts


def _option(argv: list[str], *flags: str) -> str:
    for index, arg in enumerate(argv):
        if arg in flags:
            return argv[index + 1]
    raise AssertionError(f"none of {flags} in {argv}")


def _settings_vars() -> set[str]:
    """Every environment variable podcast_core.settings and resources read."""
    names = {"PODCAST_DATA_DIR", "PODCAST_LLM_API_KEY", *settings_module._ENV_FIELDS}
    for cls, prefix in settings_module._SECTIONS.values():
        names |= {prefix + field.name.upper() for field in dataclasses.fields(cls)}
    return names


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends in a continuation line"
    return instructions


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in _dockerfile():
        if keyword in ("ENV", "ARG"):
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                if sep:
                    env[key] = value
    return env


def _workdir() -> str:
    workdirs = [args for keyword, args in _dockerfile() if keyword == "WORKDIR"]
    assert len(workdirs) == 1, "one WORKDIR: the compose files use absolute paths under it"
    return workdirs[0]


def _in_repo(container_path: str) -> Path:
    """The repository file the image has at ``container_path`` (under WORKDIR)."""
    workdir = _workdir().rstrip("/") + "/"
    assert container_path.startswith(workdir), f"{container_path} is not under {workdir}"
    return REPO / container_path[len(workdir) :]


def _cli_parse(argv: list[str]) -> dict[str, Any]:
    """Parse ``argv`` with the installed click CLI of its executable, without running it."""
    from dagster._cli import cli as dagster_cli
    from dagster._daemon.cli import cli as daemon_cli
    from dagster_webserver.cli import cli as webserver_cli

    roots = {
        "dagster": dagster_cli,
        "dagster-daemon": daemon_cli,
        "dagster-webserver": webserver_cli,
    }
    executable, args = argv[0], list(argv[1:])
    assert (VENV_BIN / executable).exists(), f"{executable} is not installed in {VENV_BIN}"
    assert executable in roots, f"no CLI parser known for {executable}"
    # Paths the image has under WORKDIR are checked against the repository's files.
    workdir = _workdir().rstrip("/") + "/"
    args = [str(_in_repo(a)) if a.startswith(workdir) else a for a in args]
    command: click.Command = roots[executable]
    parent: click.Context | None = None
    name = executable
    while isinstance(command, click.Group):
        assert args, f"{argv}: missing subcommand"
        parent = click.Context(command, info_name=name, parent=parent)
        name, args = args[0], args[1:]
        sub = command.get_command(parent, name)
        assert sub is not None, f"{argv}: no subcommand {name!r}"
        command = sub
    try:
        context = command.make_context(name, args, parent=parent)
    except click.ClickException as exc:
        raise AssertionError(f"{argv}: {exc.format_message()}") from exc
    return context.params


# ------------------------------------------------------------------------------------- compose


def test_compose_parses_with_the_expected_services():
    compose = _compose()
    assert set(compose["services"]) == SERVICES
    assert compose["services"]["postgres"]["image"] == "postgres:16"
    env = _env_example()
    assert _interpolate(compose["services"]["minio"]["image"], env).startswith("minio/minio:")
    assert _interpolate(compose["services"]["minio_init"]["image"], env).startswith("minio/mc:")
    for name in ("minio", "minio_init"):
        assert compose["services"][name]["networks"] == ["podcast"], name
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"]["context"] == "."
        assert service["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
        assert service["networks"] == ["podcast"], name
        assert service.get("restart") == "unless-stopped", name
    assert compose["services"]["postgres"]["networks"] == ["podcast"]
    # Only the GPU variant is optional.
    assert compose["services"]["user_code_gpu"]["profiles"] == ["gpu"]
    assert all("profiles" not in s for n, s in compose["services"].items() if n != "user_code_gpu")


def test_named_volumes_and_network_are_declared_with_fixed_names():
    compose = _compose()
    declared = compose["volumes"]
    for name in compose["services"]:
        for source in _mounts(name):
            if not source.startswith("/"):
                assert source in declared, f"{name}: volume {source} is not declared"
    # DockerRunLauncher refers to them by name, outside compose: no project-name prefix.
    for key, spec in declared.items():
        assert spec and spec.get("name"), f"volume {key} needs an explicit name"
    assert compose["networks"]["podcast"]["name"]


def test_postgres_has_a_healthcheck_and_a_volume():
    postgres = _service("postgres")
    test = postgres["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and test[1].startswith("pg_isready")
    assert "$${POSTGRES_USER}" in test[1], "escape $ so the container's shell expands it"
    assert any(m.endswith(":/var/lib/postgresql/data") for m in postgres["volumes"])
    env = _environment("postgres", _env_example())
    assert env["POSTGRES_USER"] == _env_example()["DAGSTER_POSTGRES_USER"]
    assert env["POSTGRES_DB"] == _env_example()["DAGSTER_POSTGRES_DB"]
    assert "ports" not in postgres, "the database is reachable from the compose network only"


def test_every_compose_variable_is_documented_in_env_example():
    # The parsed values (and keys), not the comments, which quote ${VAR} forms as examples.
    text = "\n".join(_strings(_compose()))
    documented = _env_example()
    used = {m["name"] for m in INTERPOLATION.finditer(text)}
    assert used, "no ${VAR} found: the pattern is broken"
    assert not used - set(documented), f"add to .env.example: {sorted(used - set(documented))}"
    # Only the braced form, so every use is found above ($$ is a literal $).
    bare = {m["name"] for m in BARE_VARIABLE.finditer(text.replace("$$", ""))}
    assert not bare, f"use ${{VAR}} instead of $VAR: {sorted(bare)}"
    # Every use has a default or stops compose with a message; none is silently empty.
    for match in INTERPOLATION.finditer(text):
        assert match["op"] in (":-", ":?"), f"{match[0]}: give a default (:-) or a message (:?)"
        if match["op"] == ":?":
            assert match["arg"].strip(), f"{match[0]}: say what to set"
            assert documented[match["name"]], f"{match['name']} is required: give a placeholder"
    # Everything resolves with .env.example (what `docker compose config` would do first).
    _resolve(_compose(), documented)
    # .env.example shows the effective defaults: copying it unchanged changes nothing.
    for match in INTERPOLATION.finditer(text):
        if match["op"] == ":-":
            assert documented[match["name"]] == match["arg"], (
                f"{match['name']}: .env.example says {documented[match['name']]!r},"
                f" docker-compose.yml defaults to {match['arg']!r}"
            )


def test_every_instance_env_var_is_documented_in_env_example():
    used = _instance_env_vars(_load_yaml(PROD_INSTANCE))
    assert used >= POSTGRES_VARS
    missing = used - set(_env_example())
    assert not missing, f"add to .env.example: {sorted(missing)}"
    # The compose file gives each one to the processes that load the instance.
    for service in APP_SERVICES:
        env = _environment(service, _env_example())
        assert used <= set(env), f"{service}: missing {sorted(used - set(env))}"


def test_commands_parse_with_the_installed_clis():
    expected = {
        "user_code": ("dagster", "code-server", "start"),
        "user_code_gpu": ("dagster", "code-server", "start"),
        "webserver": ("dagster-webserver",),
        "daemon": ("dagster-daemon", "run"),
    }
    for service, prefix in expected.items():
        argv = _command(service)
        assert tuple(argv[: len(prefix)]) == prefix, f"{service}: {argv}"
        params = _cli_parse(argv)
        assert params.get("host", "0.0.0.0") == "0.0.0.0", (
            f"{service} must listen on all interfaces"
        )
    for service in CODE_SERVERS:
        params = _cli_parse(_command(service))
        assert params["module_name"] == "podcast_assets.definitions"
        assert params["port"] == 4000


def test_healthchecks_parse_and_match_the_commands():
    for service in CODE_SERVERS:
        test = _service(service)["healthcheck"]["test"]
        assert test[0] == "CMD"
        params = _cli_parse(test[1:])
        assert test[1:4] == ["dagster", "api", "grpc-health-check"]
        assert params["port"] == int(_option(_command(service), "-p", "--port"))
    daemon_check = _service("daemon")["healthcheck"]["test"]
    assert daemon_check[:2] == ["CMD", "dagster-daemon"]
    _cli_parse(daemon_check[1:])
    web_check = _service("webserver")["healthcheck"]["test"]
    assert web_check[:3] == ["CMD", "python", "-c"]
    compile(web_check[3], "<webserver healthcheck>", "exec")
    port = _option(_command("webserver"), "-p", "--port")
    assert f"127.0.0.1:{port}/server_info" in web_check[3]


def test_code_location_module_loads_and_exposes_defs():
    argv = _command("user_code")
    module = importlib.import_module(_option(argv, "-m", "--module-name"))
    assert isinstance(module.defs, dg.Definitions)
    assert module.defs.resolve_job_def("episode_job") is not None


def test_workspaces_point_at_the_code_servers():
    expected_location = _pyproject()["tool"]["dagster"]["code_location_name"]
    for service, filename in CODE_SERVERS.items():
        path = DEPLOY / filename
        config = ensure_workspace_config(_load_yaml(path), str(path))
        [entry] = config["load_from"]
        grpc = entry["grpc_server"]
        assert grpc["host"] == service, f"{filename} must point at the {service} service"
        assert grpc["port"] == int(_option(_command(service), "-p", "--port"))
        assert grpc["location_name"] == expected_location


@pytest.mark.parametrize("workspace", sorted(CODE_SERVERS.values()))
def test_webserver_and_daemon_load_the_selected_workspace(workspace):
    env = {"PODCAST_WORKSPACE_FILE": workspace}
    for service in ("webserver", "daemon"):
        argv = _command(service, env)
        path = _option(argv, "-w", "--workspace")
        assert _in_repo(path) == DEPLOY / workspace
        assert _cli_parse(argv)["workspace"] == (str(DEPLOY / workspace),)
    # The default (no PODCAST_WORKSPACE_FILE) is the CPU code server, which always runs.
    assert _in_repo(_option(_command("daemon"), "-w")) == DEPLOY / "workspace.docker.yaml"
    assert _env_example()["PODCAST_WORKSPACE_FILE"] == "workspace.docker.yaml"


def test_startup_order_waits_for_healthy_dependencies():
    for service in ("webserver", "daemon"):
        depends = _service(service)["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["user_code"]["condition"] == "service_healthy"
    for service in CODE_SERVERS:
        assert _service(service)["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Buckets and the application key exist before any Dagster process writes to S3.
    for service in APP_SERVICES:
        depends = _service(service)["depends_on"]
        assert depends["minio_init"]["condition"] == "service_completed_successfully", service
    assert _service("minio_init")["depends_on"]["minio"]["condition"] == "service_healthy"
    assert _service("minio_init")["restart"] == "no", "a one-shot job, not a daemon"


def test_only_the_webserver_is_published_and_on_loopback():
    compose = _compose()
    published = {n: s["ports"] for n, s in compose["services"].items() if s.get("ports")}
    assert set(published) == {"webserver"}
    [mapping] = published["webserver"]
    host_ip, host_port, container_port = str(mapping).split(":")
    assert host_ip == "127.0.0.1"
    assert container_port == _option(_command("webserver"), "-p", "--port") == host_port == "3000"


def test_docker_socket_and_env_file_where_needed():
    for service in ("webserver", "daemon"):
        assert "/var/run/docker.sock" in _mounts(service).values(), service
        assert _service(service)["group_add"], (
            f"{service}: the non-root user needs the socket group"
        )
    for service in APP_SERVICES - {"webserver"}:
        assert _service(service)["env_file"] == ".env", service
    # The webserver gets instance access only (Postgres, and S3 for compute logs).
    assert "env_file" not in _service("webserver")
    assert set(_environment("webserver", _env_example())) == POSTGRES_VARS | INSTANCE_S3_VARS
    for service in CODE_SERVERS:
        assert not any("docker.sock" in m for m in _mounts(service)), f"{service}: no Docker access"


def test_gpu_code_server_reserves_gpus_and_gives_them_to_runs():
    gpu = _service("user_code_gpu")
    assert gpu["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    ]
    env = _environment("user_code_gpu", _env_example())
    assert env["DAGSTER_CONTAINER_IMAGE"] == _interpolate(gpu["image"], _env_example())
    assert _environment("user_code")["DAGSTER_CONTAINER_IMAGE"] == _interpolate(
        _service("user_code")["image"]
    )
    context = json.loads(env["DAGSTER_CONTAINER_CONTEXT"])
    # What dagster_docker.DockerContainerContext.create_from_config accepts.
    docker_context = context["docker"]
    result = process_config(Shape(DOCKER_LAUNCHER_SCHEMA), docker_context)
    assert result.success, result.errors
    requests = docker_context["container_kwargs"]["device_requests"]
    assert requests, "no device request"
    for request in requests:
        assert set(request) <= DEVICE_REQUEST_KWARGS, f"not DeviceRequest kwargs: {request}"
        assert request["driver"] == "nvidia" and request["count"] == -1
        assert all(isinstance(c, list) for c in request["capabilities"]), "a list of lists"
    # container_kwargs merge shallowly: this context must not replace the launcher's settings.
    launcher_kwargs = _load_yaml(PROD_INSTANCE)["run_launcher"]["config"]["container_kwargs"]
    assert not set(docker_context["container_kwargs"]) & set(launcher_kwargs)
    assert set(docker_context) == {"container_kwargs"}


# -------------------------------------------------------------------------------- .env.example


def test_no_secret_is_committed():
    values = _env_example()
    for key, value in values.items():
        if SECRET_NAME.search(key):
            assert value in PLACEHOLDERS, (
                f".env.example: {key} must be a placeholder, not {value!r}"
            )
    assert values["DAGSTER_POSTGRES_PASSWORD"] == "change-me"
    for path in (COMPOSE_FILE, ENV_EXAMPLE, PROD_INSTANCE, DOCKERFILE, *DEPLOY.glob("*.yaml")):
        text = path.read_text()
        for pattern in SECRET_VALUE_PATTERNS:
            assert not pattern.search(text), f"{path.name}: looks like a secret: {pattern.pattern}"
    # Secrets in compose come only from the environment: no literal, no non-empty default.
    for name, service in _compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                match = INTERPOLATION.fullmatch(str(value))
                assert match, f"{name}: {key} must be ${{VAR}} from .env"
                assert match["op"] == ":?" or not match["arg"], f"{name}: {key} has a default"

    # Secrets in the instance file come only from {env: ...}.
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if SECRET_NAME.search(str(key)):
                    assert isinstance(item, dict) and set(item) == {"env"}, f"{path}.{key}"
                walk(item, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(_load_yaml(PROD_INSTANCE), "dagster.prod.yaml")


def test_application_settings_reach_code_servers_and_runs_with_the_code_defaults():
    settings_vars = _settings_vars()
    launcher_vars = set(_load_yaml(PROD_INSTANCE)["run_launcher"]["config"]["env_vars"])
    # Every setting the code reads is copied into run containers, plus the instance storage, the
    # compute log bucket and the S3 credentials.
    wanted = settings_vars | POSTGRES_VARS | INSTANCE_S3_VARS
    assert launcher_vars == wanted, (
        f"run_launcher.env_vars: missing {sorted(wanted - launcher_vars)},"
        f" unexpected {sorted(launcher_vars - wanted)}"
    )
    daemon = _environment("daemon")
    # DockerRunLauncher raises when a bare listed name is unset in the daemon: all are set.
    assert launcher_vars <= set(daemon), f"daemon lacks {sorted(launcher_vars - set(daemon))}"
    # Code servers compute code versions from the same values runs use.
    for service in CODE_SERVERS:
        env = _environment(service)
        assert {k: env[k] for k in settings_vars} == {k: daemon[k] for k in settings_vars}
    # Compose defaults and .env.example values are the code's defaults, except the deliberate
    # MinIO overrides.
    expected = dataclasses.replace(
        settings_module.load_settings({"PODCAST_DATA_DIR": "/data"}),
        **{field: value for field, value in COMPOSE_OVERRIDES.values()},
    )
    for var, (field, value) in COMPOSE_OVERRIDES.items():
        assert settings_module._ENV_FIELDS[var][0] == field
        assert daemon[var] == value
    from_compose = {k: daemon[k] for k in settings_vars}
    assert settings_module.load_settings(from_compose) == expected
    from_example = {k: v for k, v in _env_example().items() if k in settings_vars}
    assert settings_module.load_settings({**from_example, "PODCAST_DATA_DIR": "/data"}) == expected
    assert set(from_example) == settings_vars - {"PODCAST_DATA_DIR"}
    assert daemon["PODCAST_DATA_DIR"] == _dockerfile_env()["PODCAST_DATA_DIR"] == "/data"


# -------------------------------------------------------------------------- dagster.prod.yaml


def test_prod_instance_keeps_the_dev_queue_monitoring_and_retries():
    prod, dev = _load_yaml(PROD_INSTANCE), _load_yaml(DEV_INSTANCE)
    for block in SHARED_INSTANCE_BLOCKS:
        assert block in dev, f"dagster.yaml has no {block}"
        assert prod.get(block) == dev[block], f"{block} differs between the instance files"
    limits = prod["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "podcast/queue", "value": "whisper", "limit": 1} in limits
    assert prod["run_coordinator"] == dev["run_coordinator"]
    coordinator = class_from_code_pointer(
        prod["run_coordinator"]["module"], prod["run_coordinator"]["class"]
    )
    assert issubclass(coordinator, QueuedRunCoordinator)
    assert prod["telemetry"] == {"enabled": False}


def test_prod_instance_passes_dagster_instance_schema(tmp_path, monkeypatch):
    # The same validation DagsterInstance.get() runs on $DAGSTER_HOME/dagster.yaml, including the
    # run-queue conflict checks; {env: ...} values are checked for shape, not resolved.
    config, custom_class = dagster_instance_config(str(DEPLOY), PROD_INSTANCE.name)
    assert custom_class is None
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert {
        key: postgres[key] for key in ("username", "password", "hostname", "db_name", "port")
    } == {
        "username": {"env": "DAGSTER_POSTGRES_USER"},
        "password": {"env": "DAGSTER_POSTGRES_PASSWORD"},
        "hostname": {"env": "DAGSTER_POSTGRES_HOST"},
        "db_name": {"env": "DAGSTER_POSTGRES_DB"},
        "port": {"env": "DAGSTER_POSTGRES_PORT"},
    }
    # What a process resolves from .env.example's values.
    env = _env_example()
    for key in POSTGRES_VARS | INSTANCE_S3_VARS:
        monkeypatch.setenv(key, env[key])
    resolved = process_config(Shape(pg_config()), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    assert resolved.value["postgres_db"]["port"] == int(env["DAGSTER_POSTGRES_PORT"])
    assert resolved.value["postgres_db"]["password"] == env["DAGSTER_POSTGRES_PASSWORD"]

    # The instance reference handed to run workers: the classes it names, and the classes that
    # dagster itself ships, loaded and configured.
    ref = InstanceRef.from_dir(
        str(tmp_path), config_dir=str(DEPLOY), config_filename=PROD_INSTANCE.name
    )
    assert ref.storage_data.module_name == "dagster_postgres"
    assert ref.run_launcher_data.module_name == "dagster_docker"
    assert ref.run_launcher_data.class_name == "DockerRunLauncher"
    for data in (ref.run_coordinator_data, ref.compute_logs_data, ref.local_artifact_storage_data):
        cls = class_from_code_pointer(data.module_name, data.class_name)
        result = process_config(cls.config_type(), yaml.safe_load(data.config_yaml) or {})
        assert result.success, (data.class_name, result.errors)
    coordinator = ref.run_coordinator_data.rehydrate(RunCoordinator)
    assert type(coordinator).__name__ == "PodcastRunCoordinator"
    assert isinstance(coordinator, QueuedRunCoordinator)


def test_run_launcher_config_matches_compose():
    compose = _compose()
    launcher = _load_yaml(PROD_INSTANCE)["run_launcher"]
    assert launcher["module"] == "dagster_docker" and launcher["class"] == "DockerRunLauncher"
    config = launcher["config"]
    try:  # the real schema when dagster-docker is installed (in the image)
        from dagster_docker import DockerRunLauncher

        schema: Any = DockerRunLauncher.config_type()
    except ImportError:
        schema = DOCKER_LAUNCHER_SCHEMA
    result = process_config(Shape(schema) if isinstance(schema, dict) else schema, config)
    assert result.success, result.errors
    # dagster_docker.utils.validate_docker_config
    kwargs = config["container_kwargs"]
    assert not {"image", "environment", "network"} & set(kwargs)
    assert not ("network" in config and "networks" in config)
    # Runs join the compose network by its fixed name, so they reach `postgres`.
    assert config["network"] == compose["networks"]["podcast"]["name"]
    # Runs mount the volumes the code server mounts, by their fixed names, at the same paths.
    names = {key: spec["name"] for key, spec in compose["volumes"].items()}
    run_mounts = {v.split(":")[0]: v.split(":")[1] for v in kwargs["volumes"]}
    for service in CODE_SERVERS:
        code_server_mounts = {names[s]: t for s, t in _mounts(service).items()}
        assert run_mounts == code_server_mounts, service
    # Local storage is on a volume the webserver also mounts (compute logs are on S3).
    storage = _load_yaml(PROD_INSTANCE)
    base = storage["local_artifact_storage"]["config"]["base_dir"]
    assert any(base.startswith(p + "/") for p in run_mounts.values())
    web = {names[s]: t for s, t in _mounts("webserver").items() if s in names}
    assert any(base.startswith(p + "/") for p in web.values()), "webserver can't read it"


def test_compute_logs_go_to_the_bundled_s3(monkeypatch):
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    compute_logs = _load_yaml(PROD_INSTANCE)["compute_logs"]
    assert (compute_logs["module"], compute_logs["class"]) == (
        S3ComputeLogManager.__module__,
        S3ComputeLogManager.__name__,
    )
    config = compute_logs["config"]
    assert config["bucket"] == {"env": "DAGSTER_COMPUTE_LOGS_BUCKET"}
    assert config["prefix"] == {"env": "DAGSTER_COMPUTE_LOGS_PREFIX"}
    assert config["endpoint_url"] == {"env": "PODCAST_S3_ENDPOINT_URL"}
    env = _env_example()
    for key in INSTANCE_S3_VARS:
        monkeypatch.setenv(key, env[key])
    result = process_config(S3ComputeLogManager.config_type(), config)
    assert result.success, result.errors
    # Resolved with compose's values: the minio service (minio_init creates the bucket).
    assert _environment("daemon", env)["PODCAST_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_minio_has_a_healthcheck_a_volume_and_required_credentials():
    minio = _service("minio")
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert _mounts("minio") == {"minio_data": "/data"}
    assert minio["command"] == ["server", "/data"]
    for name in ("minio", "minio_init"):
        raw = _service(name)["environment"]
        for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
            assert INTERPOLATION.fullmatch(raw[key])["op"] == ":?", (name, key)
    for key in AWS_VARS:
        assert INTERPOLATION.fullmatch(_compose()["x-dagster-env"][key])["op"] == ":?", key
    assert "ports" not in minio, "S3 is reachable from the compose network only"


def test_minio_init_creates_the_buckets_and_the_application_key(tmp_path):
    # The one-shot script, run by a real shell with a stand-in `mc` that records its arguments.
    env = _env_example()
    [script] = _resolve(_service("minio_init")["command"], env)
    assert _service("minio_init")["entrypoint"] == ["/bin/sh", "-c"]
    log = tmp_path / "mc.log"
    (tmp_path / "mc").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (tmp_path / "mc").chmod(0o755)
    service_env = _environment("minio_init", env)

    def run(**overrides: str) -> list[str]:
        log.unlink(missing_ok=True)
        process_env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", **service_env, **overrides}
        subprocess.run(["/bin/sh", "-c", script], env=process_env, check=True, timeout=30)
        return log.read_text().splitlines()

    calls = run()
    root_user, root_password = env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"]
    key, secret = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    assert calls == [
        f"alias set local http://minio:9000 {root_user} {root_password}",
        "mb --ignore-existing local/podcast",
        f"mb --ignore-existing local/{env['DAGSTER_COMPUTE_LOGS_BUCKET']}",
        f"admin user add local {key} {secret}",
        f"admin policy attach local readwrite --user {key}",
    ]
    # The artifact bucket comes from PODCAST_ARTIFACT_ROOT; a local root needs no bucket.
    assert "mb --ignore-existing local/other" in run(PODCAST_ARTIFACT_ROOT="s3://other/a/b")
    assert not any("local/podcast " in c for c in run(PODCAST_ARTIFACT_ROOT="/data/artifacts"))
    assert key != root_user, "minio_init cannot add the root user as an application user"
    # The artifact root's default in compose is on that bucket and endpoint.
    daemon = _environment("daemon", env)
    assert daemon["PODCAST_ARTIFACT_ROOT"].startswith("s3://podcast/")
    assert service_env["PODCAST_ARTIFACT_ROOT"] == daemon["PODCAST_ARTIFACT_ROOT"]
    assert service_env["DAGSTER_COMPUTE_LOGS_BUCKET"] == daemon["DAGSTER_COMPUTE_LOGS_BUCKET"]


# ---------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_builds_the_image_the_compose_file_runs():
    instructions = _dockerfile()
    keywords = [k for k, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    env = _dockerfile_env()
    assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
    assert env["PODCAST_DATA_DIR"] == "/data"
    workdir = _workdir()

    # The project and the deployment libraries, at the versions matching the dagster pin.
    [install] = [a for k, a in instructions if k == "RUN" and "pip install" in a]
    assert '".[offline-models]"' in install
    pyproject = _pyproject()
    dagster_pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("dagster=="))
    _major, minor, patch = dagster_pin.split("==")[1].split(".")
    library_version = f"0.{int(minor) + 16}.{patch}"  # dagster 1.13.27 <-> libraries 0.29.27
    assert dg.__version__ == dagster_pin.split("==")[1]
    for library in ("dagster-postgres", "dagster-docker", "dagster-aws"):
        assert f"{library}=={library_version}" in install, library

    # Everything the package and the deployment need is copied, from paths that exist.
    copies = [shlex.split(a) for k, a in instructions if k == "COPY"]
    copied: dict[str, str] = {}
    for args in copies:
        args = [a for a in args if not a.startswith("--")]
        *sources, destination = args
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            copied[source.rstrip("/")] = destination
    for package in pyproject["tool"]["setuptools"]["packages"]:
        assert package in copied, f"package {package} is not copied"
    assert "deploy" in copied and copied["deploy"].rstrip("/") in ("deploy", f"{workdir}/deploy")
    assert keywords.index("COPY") > keywords.index("WORKDIR")

    # The prod instance file becomes $DAGSTER_HOME/dagster.yaml, after deploy/ is copied.
    [install_instance] = [
        i
        for i, (k, a) in enumerate(instructions)
        if k == "RUN" and "deploy/dagster.prod.yaml" in a and '"$DAGSTER_HOME/dagster.yaml"' in a
    ]
    [copy_deploy] = [
        i for i, (k, a) in enumerate(instructions) if k == "COPY" and a.startswith("deploy/ ")
    ]
    assert copy_deploy < install_instance

    # Non-root, the two ports, and the default command is the code server of compose.
    users = [a for k, a in instructions if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    exposed = {p for k, a in instructions if k == "EXPOSE" for p in a.split()}
    assert exposed == {"4000", "3000"}
    [cmd] = [a for k, a in instructions if k == "CMD"]
    assert json.loads(cmd) == _command("user_code")

    # Container paths the compose file uses exist in the image.
    for service in ("webserver", "daemon"):
        assert _in_repo(_option(_command(service), "-w")).is_file()
    mounts = _mounts("user_code")
    assert mounts["podcast_model_cache"] == env["XDG_CACHE_HOME"]
    assert env["HF_HOME"].startswith(env["XDG_CACHE_HOME"] + "/")
    assert mounts["podcast_data"] == env["PODCAST_DATA_DIR"]
