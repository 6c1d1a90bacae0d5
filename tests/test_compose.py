"""docker-compose.yml cannot run here (no Docker engine), so check that it agrees with the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_service_of_the_design_is_there():
    assert {"redis", "worker", "beat", "flower", "simulator"} <= set(SERVICES)
    assert SERVICES["simulator"]["profiles"] == ["dev"]


def test_redis_keeps_what_it_is_given():
    command = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command


def test_celery_services_run_the_worker_app():
    for name, verb in [("worker", "worker"), ("beat", "beat"), ("flower", "flower")]:
        assert SERVICES[name]["command"][:4] == ["celery", "-A", "worker", verb]


def test_flower_is_behind_basic_auth():
    assert any(arg.startswith("--basic-auth=") for arg in SERVICES["flower"]["command"])


def test_every_variable_names_a_setting():
    fields = {name.upper() for name in Settings.model_fields}
    for name, service in SERVICES.items():
        for variable in service.get("environment", {}):
            assert variable in fields, f"{name}: {variable} is not a setting"


def test_the_image_holds_every_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for pattern in packages["include"]:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.M), f"{package} missing from the image"
