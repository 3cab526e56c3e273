"""offline-bundle installer: the small trusted core that verifies, unpacks and deploys bundles.

Standard library only (``cryptography`` and ``zstandard`` are used when importable, never
required) and CPython >= 3.9 compatible: this package runs alone inside the air gap.
It never imports ``bundler``.
"""

# The CLI checks this marker: pypa/installer is also imported as ``installer`` and would
# shadow this package when both are installed in one environment.
OFFLINE_BUNDLE_FORMAT = 1

__version__ = "0.1.0"
TOOL_NAME = "offline-bundle"
