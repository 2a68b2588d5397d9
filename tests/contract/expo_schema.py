"""Expo's real published schema (API.md section 11), loaded once for the contract tests.

Location: env PUBLISHING_EXPO_SCHEMA, else the vendored copy `tests/contract/expo/graphql.schema.json`
(provenance and how to refresh it: `tests/contract/expo/PROVENANCE.md`).
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

VENDORED = Path(__file__).resolve().parent / "expo" / "graphql.schema.json"


def schema_path() -> Path:
    override = os.environ.get("PUBLISHING_EXPO_SCHEMA")
    return Path(override) if override else VENDORED


@functools.cache
def expo_schema() -> GraphQLSchema:
    path = schema_path()
    if not path.is_file():
        raise FileNotFoundError(f"Expo's schema is not at {path}; set PUBLISHING_EXPO_SCHEMA")
    schema = build_client_schema(json.loads(path.read_text()))
    schema._validation_errors = []  # see the module docstring
    return schema
