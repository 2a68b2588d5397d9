"""`publishing-operator sandbox`: emulated Kubernetes API + Expo simulator + the operator, one process."""
