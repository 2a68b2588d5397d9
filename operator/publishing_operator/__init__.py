"""publishing-operator: mobile-app publishing (Expo EAS Build + Submit) as Kubernetes resources."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("publishing-operator")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
