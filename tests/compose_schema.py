"""A JSON Schema of the Compose file format (compose-spec.io), the part compose/docker-compose.yml
uses, written strictly: an unknown key, a misspelt condition or a wrong type fails, as `docker
compose config` would. No Docker engine runs in CI, so tests/test_app.py validates the file with it.
Extension fields (`x-…`) are allowed at the top level, as the specification says.
"""

from __future__ import annotations

from typing import Any

STRING_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
COMMAND: dict[str, Any] = {"oneOf": [{"type": "string"}, STRING_LIST]}
DURATION: dict[str, Any] = {"type": "string", "pattern": r"^(\d+(ns|us|ms|s|m|h))+$"}
SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean", "null"]}

HEALTHCHECK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "disable": {"type": "boolean"},
        "test": {"oneOf": [{"type": "string"}, {**STRING_LIST, "minItems": 1,
                                                "prefixItems": [{"enum": ["NONE", "CMD", "CMD-SHELL"]}]}]},
        "interval": DURATION,
        "timeout": DURATION,
        "start_period": DURATION,
        "start_interval": DURATION,
        "retries": {"type": "integer", "minimum": 0},
    },
}

DEPENDS_ON: dict[str, Any] = {
    "oneOf": [
        {**STRING_LIST, "uniqueItems": True},
        {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False, "required": ["condition"],
            "properties": {
                "condition": {"enum": ["service_started", "service_healthy", "service_completed_successfully"]},
                "restart": {"type": "boolean"},
                "required": {"type": "boolean"},
            }}},
    ],
}

BUILD: dict[str, Any] = {
    "oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": False, "properties": {
        "context": {"type": "string"}, "dockerfile": {"type": "string"},
        "args": {"type": "object", "additionalProperties": SCALAR}, "target": {"type": "string"}}}],
}

SERVICE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "image": {"type": "string"},
        "build": BUILD,
        "command": COMMAND,
        "entrypoint": COMMAND,
        "environment": {"oneOf": [{"type": "object", "additionalProperties": SCALAR}, STRING_LIST]},
        "env_file": {"oneOf": [{"type": "string"}, STRING_LIST]},
        "ports": {"type": "array", "items": {"oneOf": [{"type": "string", "pattern": r"^[0-9.:\-/a-z]+$"},
                                                       {"type": "integer"}]}},
        "expose": {"type": "array", "items": {"type": ["string", "integer"]}},
        "volumes": {"type": "array", "items": {"type": "string", "pattern": r"^[^:]+:[^:]+(:(ro|rw))?$"}},
        "networks": {"oneOf": [STRING_LIST, {"type": "object", "additionalProperties": {
            "oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": False, "properties": {
                "aliases": STRING_LIST, "ipv4_address": {"type": "string"}}}]}}]},
        "healthcheck": HEALTHCHECK,
        "depends_on": DEPENDS_ON,
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "deploy": {"type": "object", "additionalProperties": False, "properties": {
            "replicas": {"type": ["integer", "string"]},
            "resources": {"type": "object"},
        }},
        "user": {"type": "string"},
        "working_dir": {"type": "string"},
        "stop_grace_period": DURATION,
        "init": {"type": "boolean"},
    },
    "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
}

COMPOSE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "required": ["services"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {"type": "object", "minProperties": 1,
                     "propertyNames": {"pattern": "^[a-zA-Z0-9._-]+$"}, "additionalProperties": SERVICE},
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "networks": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "secrets": {"type": "object"},
        "configs": {"type": "object"},
    },
}
