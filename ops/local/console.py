"""`make console ARGS="tenant list"`: the operator console (ops/cli.py) against the running local stack.

It reads the stack's stack.json (ops/local/state.py) and sets what `portal-access` needs for it: the
moto endpoint, moto's dummy keys, the region, stage local, the bucket, and PORTAL_PUBLIC_BASE_URL, so links in
messages the console sends (a new tenant's admin invitation) open the API on the port the stack runs on. Without a
running stack it says so in one line. python -m ops.local.console <console arguments>
"""
import os
import sys

from ops.local import state


def environment(stack: dict) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": stack["aws_endpoint"], "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": stack.get("region") or "us-east-1",
            "AWS_DEFAULT_REGION": stack.get("region") or "us-east-1", "PORTAL_STAGE": "local",
            "PORTAL_UPLOADS_BUCKET": stack["bucket"], "PORTAL_OUTBOX_DIR": stack["outbox"],
            "PORTAL_PUBLIC_BASE_URL": stack.get("public_base_url") or stack["api_url"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wants_help_only = not argv or argv[0] in ("-h", "--help")
    stack = None if wants_help_only else state.live()
    if stack is None and not wants_help_only:
        print(f"portal-access: error: no local stack is running (no live one in {state.state_path()}): start it "
              f"with `make run` (in another terminal) and try again", file=sys.stderr)
        return 1
    if stack is not None:
        # Like the stack itself: nothing may send a client elsewhere than its moto server.
        for key in list(os.environ):
            if key.startswith("AWS_ENDPOINT_URL_") or key in (
                    "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
                del os.environ[key]
        os.environ.update(environment(stack))
    from ops import cli
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
