"""Schemathesis hooks for scripts/schemathesis.sh: queue PATCH bodies use Zaqar's own
JSON-patch media type, which is plain JSON on the wire; the JSON-home document is JSON too."""

import json

import schemathesis


@schemathesis.serializer("application/openstack-messaging-v2.0-json-patch")
def json_patch(ctx, value):
    return json.dumps(value).encode("utf-8")


@schemathesis.deserializer("application/json-home")
def json_home(ctx, response):
    """The JSON-home document of `GET /v2` is JSON under its own media type."""
    return json.loads(response.content)
