"""docker-compose.yml cannot run here (no Docker engine), so check that it agrees with the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from cli.main import cli
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
SETTINGS = {name.upper() for name in Settings.model_fields}
DEFAULT = re.compile(r"\$\{(\w+)(?::?-([^}]*)|:\?[^}]*)?\}")


def _default(value: str) -> str:
    """What ${NAME:-default} gives when NAME is not set."""
    match = DEFAULT.fullmatch(value)
    return (match.group(2) or "") if match else value


def test_every_service_of_the_design_is_there():
    assert {"redis", "worker", "beat", "flower", "metrics", "consumer", "simulator"} <= set(SERVICES)
    assert SERVICES["simulator"]["profiles"] == ["dev"]


def test_redis_keeps_what_it_is_given_and_says_when_it_is_up():
    command = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert SERVICES["redis"]["healthcheck"]["test"][-1] == "ping"


def test_every_command_exists():
    for name, service in SERVICES.items():
        command = service.get("command")
        if not command or name == "redis":
            continue
        program = command[0]
        if program == "celery":
            assert command[1:3] == ["-A", "worker"] and command[3] in ("worker", "beat", "flower"), name
        else:
            assert program in SCRIPTS, f"{name}: {program} is not a console script"
        if program == "lightsms-queue":
            assert command[1] in cli.commands, f"{name}: lightsms-queue has no command {command[1]}"


def test_flower_never_runs_without_a_password():
    auth = SERVICES["flower"]["environment"]["FLOWER_BASIC_AUTH"]
    assert ":?" in auth, "FLOWER_BASIC_AUTH must be required, not defaulted"


def test_every_variable_names_a_setting():
    for name, service in SERVICES.items():
        for variable in service.get("environment", {}):
            assert variable in SETTINGS or variable.startswith("FLOWER_"), f"{name}: {variable} is not a setting"
    for line in (ROOT / ".env.example").read_text().splitlines():
        variable = line.lstrip("# ").split("=", 1)[0]
        if "=" in line and variable.isupper() and " " not in variable:
            assert variable in SETTINGS or variable.startswith("FLOWER_"), f".env.example: {variable}"


def test_the_dev_profile_workers_talk_to_the_simulator():
    base = urlsplit(_default(SERVICES["worker"]["environment"]["LIGHTSMS_BASE_URL"]))
    simulator = SERVICES["simulator"]["command"]
    assert base.hostname == "simulator"
    assert str(base.port) == simulator[simulator.index("--port") + 1]
    settings = Settings(lightsms_base_url=base.geturl())  # local: no credentials needed
    assert settings.lightsms_login == "demo"


def test_the_image_holds_every_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for pattern in packages["include"]:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.M), f"{package} missing from the image"
