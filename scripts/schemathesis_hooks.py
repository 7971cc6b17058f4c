"""Schemathesis hooks for scripts/schemathesis.sh: queue PATCH bodies use Zaqar's own
JSON-patch media type, which is plain JSON on the wire."""

import json

import schemathesis


@schemathesis.serializer("application/openstack-messaging-v2.0-json-patch")
def json_patch(ctx, value):
    return json.dumps(value).encode("utf-8")
