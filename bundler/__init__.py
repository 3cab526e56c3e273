"""offline-bundle builder: runs on a connected host and produces signed bundle archives."""

from installer import __version__  # one release version for both halves

__all__ = ["__version__"]
