"""Every failure the user can see, grouped by whose fault it is.

Each class owns its exit code (docs/FORMAT.md "Exit codes"); the message is the one sentence the
user reads. ``problems`` carries one line per problem when there are several.
"""

from typing import Iterable, List, Optional, TypedDict

# What `--json` output and receipts carry for an error ("class" is a keyword, hence the functional form).
ErrorJSON = TypedDict("ErrorJSON", {"class": str, "message": str, "problems": List[str]})


class BundleError(Exception):
    exit_code = 1
    kind = "internal"

    def __init__(self, message: str, problems: Optional[Iterable[str]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: List[str] = list(problems or [])

    def to_json(self) -> ErrorJSON:
        return {"class": self.kind, "message": self.message, "problems": list(self.problems)}


class InternalError(BundleError):
    exit_code = 1
    kind = "internal"


class UsageError(BundleError):
    """Wrong command line, or a file named on it that does not exist."""

    exit_code = 2
    kind = "usage"


class InvalidInput(BundleError):
    """Manifest, tenant file or archive structure is not what the format allows."""

    exit_code = 3
    kind = "invalid-input"


class TrustError(BundleError):
    """Signature, key or trust scope."""

    exit_code = 4
    kind = "trust"


class ContentMismatch(BundleError):
    """Bytes differ from what was declared or pinned: unlisted member, size, hash, missing file."""

    exit_code = 5
    kind = "content-mismatch"


class UnsafeMember(BundleError):
    """A member that could write outside its place: bad path, link, device, FIFO, duplicate."""

    exit_code = 6
    kind = "unsafe-member"


class RegistryError(BundleError):
    exit_code = 7
    kind = "registry"


class VersionRefused(BundleError):
    exit_code = 8
    kind = "version-refused"


class LocalEnvironmentError(BundleError):
    """No space, permission, kit locked, unsupported filesystem."""

    exit_code = 9
    kind = "environment"


class DeployError(BundleError):
    exit_code = 10
    kind = "deploy"


# What the format's helpers raise for a value they refuse. They stay ValueErrors, so a caller may test a value by
# trying it (``except ValueError``), and are BundleErrors, so one that escapes reaches the user as its own sentence
# and exit code, never as "internal error".
class BadValue(InvalidInput, ValueError):
    """A value that is not what the format allows: a version that is not SemVer, a digest that is not hex."""


class UnsafePath(UnsafeMember, ValueError):
    """A member path that is not safe, or would land outside its root."""


class Interrupted(BundleError):
    kind = "interrupted"

    def __init__(self, signum: int) -> None:
        import signal

        name = signal.Signals(signum).name
        super().__init__("interrupted by %s; partial work was cleaned up" % name)
        self.exit_code = 128 + signum
