"""The simulator's GraphQL schema, built from the hand-written SDL beside this module."""

from __future__ import annotations

import functools
from importlib import resources

from graphql import GraphQLSchema, build_schema


def schema_sdl() -> str:
    return resources.files("publishing_testkit.expo_simulator").joinpath("schema.graphql").read_text()


@functools.cache
def simulator_schema() -> GraphQLSchema:
    return build_schema(schema_sdl())
