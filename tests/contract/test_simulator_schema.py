"""The simulator's hand-written SDL is a subset of Expo's real schema.

Every type, field, argument, input field and enum value it declares must exist in Expo's schema
with the same type; anything Expo requires (non-null arguments and input fields) must be required
here too. A mismatch fails with its path, e.g. `Build.queuePosition: Int here, Int! in Expo`.
"""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    is_introspection_type,
    is_specified_scalar_type,
)

from publishing_testkit.expo_simulator.schema import simulator_schema
from tests.contract.expo_schema import expo_schema


def _compare_type(name: str, ours: GraphQLNamedType, theirs: GraphQLNamedType | None) -> list[str]:
    if theirs is None:
        return [f"{name}: type does not exist in Expo's schema"]
    if type(ours) is not type(theirs):
        return [f"{name}: {type(ours).__name__} here, {type(theirs).__name__} in Expo"]
    problems: list[str] = []
    if isinstance(ours, GraphQLObjectType | GraphQLInterfaceType):
        assert isinstance(theirs, GraphQLObjectType | GraphQLInterfaceType)
        their_interfaces = {i.name for i in theirs.interfaces}
        problems += [
            f"{name}: implements {i.name} here, not in Expo"
            for i in ours.interfaces
            if i.name not in their_interfaces
        ]
        for field_name, field in ours.fields.items():
            path = f"{name}.{field_name}"
            their_field = theirs.fields.get(field_name)
            if their_field is None:
                problems.append(f"{path}: field does not exist in Expo")
                continue
            if str(field.type) != str(their_field.type):
                problems.append(f"{path}: {field.type} here, {their_field.type} in Expo")
            for arg_name, arg in field.args.items():
                their_arg = their_field.args.get(arg_name)
                if their_arg is None:
                    problems.append(f"{path}({arg_name}): argument does not exist in Expo")
                elif str(arg.type) != str(their_arg.type):
                    problems.append(f"{path}({arg_name}): {arg.type} here, {their_arg.type} in Expo")
            for arg_name, their_arg in their_field.args.items():
                required = isinstance(their_arg.type, GraphQLNonNull) and their_arg.default_value is None
                if required and arg_name not in field.args:
                    problems.append(f"{path}({arg_name}): required by Expo, missing here")
    elif isinstance(ours, GraphQLInputObjectType):
        assert isinstance(theirs, GraphQLInputObjectType)
        for field_name, input_field in ours.fields.items():
            path = f"{name}.{field_name}"
            their_input = theirs.fields.get(field_name)
            if their_input is None:
                problems.append(f"{path}: input field does not exist in Expo")
            elif str(input_field.type) != str(their_input.type):
                problems.append(f"{path}: {input_field.type} here, {their_input.type} in Expo")
        for field_name, their_input in theirs.fields.items():
            if isinstance(their_input.type, GraphQLNonNull) and field_name not in ours.fields:
                problems.append(f"{name}.{field_name}: required by Expo, missing here")
    elif isinstance(ours, GraphQLEnumType):
        assert isinstance(theirs, GraphQLEnumType)
        problems += [
            f"{name}.{value}: enum value not in Expo" for value in ours.values if value not in theirs.values
        ]
    elif isinstance(ours, GraphQLUnionType):
        assert isinstance(theirs, GraphQLUnionType)
        their_members = {t.name for t in theirs.types}
        problems += [
            f"{name}: member {t.name} not in Expo" for t in ours.types if t.name not in their_members
        ]
    else:
        assert isinstance(ours, GraphQLScalarType)
    return problems


def schema_differences(ours: GraphQLSchema, theirs: GraphQLSchema) -> list[str]:
    problems: list[str] = []
    for root in ("query_type", "mutation_type", "subscription_type"):
        mine, expo = getattr(ours, root), getattr(theirs, root)
        if mine is not None and (expo is None or mine.name != expo.name):
            problems.append(f"schema.{root}: {mine.name} here, {expo.name if expo else None} in Expo")
    for name, named in ours.type_map.items():
        if is_introspection_type(named) or is_specified_scalar_type(named):
            continue
        problems += _compare_type(name, named, theirs.get_type(name))
    return problems


def test_simulator_sdl_is_a_subset_of_expo_schema() -> None:
    problems = schema_differences(simulator_schema(), expo_schema())
    assert not problems, "simulator SDL differs from Expo's schema:\n" + "\n".join(problems)


def test_the_comparison_finds_drift() -> None:
    # The checker itself must catch a renamed field, a changed type, an invented enum value.
    from graphql import build_schema

    drifted = build_schema(
        """
        type RootQuery { builds: BuildQuery! }
        type BuildQuery { byId(buildId: ID!): Build! }
        type Build { id: ID! queuePosition: Int! statusText: String }
        enum BuildStatus { NEW SLEEPING }
        """
    )
    problems = schema_differences(drifted, expo_schema())
    assert "Build.queuePosition: Int! here, Int in Expo" in problems
    assert "Build.statusText: field does not exist in Expo" in problems
    assert "BuildStatus.SLEEPING: enum value not in Expo" in problems
