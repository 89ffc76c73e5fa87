"""`make check`: pip-audit of requirements.txt (the runtime dependencies Chalice packages, resolved with their own
dependencies) against PyPI's vulnerability data, and a failure whenever a package could not be audited.

    python tools/audit.py            # = pip-audit -r requirements.txt -s pypi, with the two changes below

pip-audit asks PyPI for each release at /pypi/<name>/<version>/json. The PyPI reachable from the machines of this
project (developers' and CI's) serves /pypi/<name>/json but answers 404 for the per-release address, and plain
pip-audit then reports "not found on PyPI", skips the package and passes. Two changes, nothing else:

1. When the per-release address answers 404 and the release is the project's latest, the project answer is used:
   its `vulnerabilities` are exactly the latest release's (PyPI's JSON API), the same list the per-release
   answer holds. On a network where the per-release address works, this never runs.
2. A package PyPI does not answer for fails the run. One whose pin is behind PyPI's latest release (or listed in
   NOT_AUDITABLE_HERE with the reason) cannot be audited from the project answer: it is printed as NOT AUDITED on
   every run, a warning rather than a failure, so that an upstream release alone never turns CI red.

No network, or PyPI not answering: pip-audit's own connection error, exit 1.
"""
import re
import sys
from pathlib import Path

from packaging.version import Version
from pip_audit import _cli
from pip_audit._service import pypi
from pip_audit._service.interface import ConnectionError as ServiceConnectionError

ROOT = Path(__file__).resolve().parents[1]
RELEASE_URL = re.compile(r"https://pypi\.org/pypi/(?P<name>[^/]+)/(?P<version>[^/]+)/json")
# Not the latest release, so not auditable from the project answer: each needs a reason, and a look when it changes.
NOT_AUDITABLE_HERE = {
    "python-dateutil": "botocore caps it below 3.0 and 2.9.0.post0 is the last 2.x; PyPI's latest is another line",
}
not_audited: list[str] = []


class LatestReleaseFallback:
    """Wraps pip-audit's HTTP session (only its .get is used)."""

    def __init__(self, session):
        self.session = session

    def get(self, url, **kwargs):
        response = self.session.get(url=url, **kwargs)
        match = RELEASE_URL.fullmatch(url)
        if response.status_code != 404 or not match:
            return response
        name, version = match["name"], match["version"]
        project = self.session.get(url=f"https://pypi.org/pypi/{name}/json", **kwargs)
        latest = project.json()["info"]["version"] if project.status_code == 200 else None
        if latest is not None and Version(latest) == Version(version):
            return project
        if name in NOT_AUDITABLE_HERE:
            not_audited.append(f"{name} {version} ({NOT_AUDITABLE_HERE[name]})")
            return response  # pip-audit lists it as skipped
        if latest is not None:
            # A pin fallen behind PyPI's latest: a warning, not a failure, or every upstream release would turn a
            # passing CI red with no change here. Upgrading the pin makes it auditable again.
            not_audited.append(f"{name} {version} (PyPI's latest is {latest}: upgrade the pin to audit it)")
            return response
        raise ServiceConnectionError(f"{name} {version} cannot be audited here: PyPI does not answer for it")


def main() -> int:
    original_init = pypi.PyPIService.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.session = LatestReleaseFallback(self.session)

    pypi.PyPIService.__init__ = init  # type: ignore[method-assign]
    sys.argv = ["pip-audit", "-r", str(ROOT / "requirements.txt"), "-s", "pypi", "--progress-spinner", "off",
                *sys.argv[1:]]
    try:
        _cli.audit()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    else:
        code = 0
    for entry in not_audited:
        print(f"pip-audit: NOT AUDITED: {entry}", file=sys.stderr)
    if code:
        print(f"pip-audit: FAILED (exit {code}): a vulnerability listed above, or a package that could not be "
              "resolved or audited (pip-audit needs PyPI: no network, no audit)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
