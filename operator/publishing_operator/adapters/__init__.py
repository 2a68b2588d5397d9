"""The operator's only doors to the outside: the Kubernetes API (kube, events). Expo's API is the
sibling package `publishing_operator.expo`."""
