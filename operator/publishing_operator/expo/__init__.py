"""Expo EAS Build / Submit: the GraphQL client, its documents, models and errors."""
