"""Property tests (hypothesis): manifests through the API, hostile Expo answers."""
