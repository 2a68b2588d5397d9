"""Expo's real published schema (API.md section 11), loaded once for the contract tests.

Location: env PUBLISHING_EXPO_SCHEMA, else `../shared/expo/graphql.schema.json` next to the repo.
graphql-core 3.3's schema validation rejects Expo's schema ("Interface field Project.description is
not deprecated, so implementation field App.description must not be deprecated", four fields); the
schema is what Expo serves, so it is marked as already validated (`_validation_errors = []`) and
documents are checked against it as they are.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from graphql import GraphQLSchema, build_client_schema

REPO = Path(__file__).resolve().parents[2]


def schema_path() -> Path:
    override = os.environ.get("PUBLISHING_EXPO_SCHEMA")
    return Path(override) if override else REPO.parent / "shared" / "expo" / "graphql.schema.json"


@functools.cache
def expo_schema() -> GraphQLSchema:
    path = schema_path()
    if not path.is_file():
        raise FileNotFoundError(f"Expo's schema is not at {path}; set PUBLISHING_EXPO_SCHEMA")
    schema = build_client_schema(json.loads(path.read_text()))
    schema._validation_errors = []  # see the module docstring
    return schema
