"""Creates the projects, users and role assignments the authentication tests use."""
import json
import sys
import urllib.request

URL, PASSWORD = sys.argv[1].rstrip("/"), sys.argv[2]


def call(method, path, body=None, token=None, expect=(200, 201, 204)):
    req = urllib.request.Request(URL + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req) as resp:
            data = resp.read()
            return resp.status, resp.headers, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        if e.code in expect:
            return e.code, e.headers, None
        raise


_, headers, _ = call("POST", "/auth/tokens", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": PASSWORD}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
token = headers["X-Subject-Token"]


def find(kind, name):
    _, _, doc = call("GET", f"/{kind}?name={name}", token=token)
    items = doc[kind]
    return items[0]["id"] if items else None


def ensure(kind, singular, body):
    found = find(kind, body["name"])
    if found:
        return found
    _, _, doc = call("POST", f"/{kind}", {singular: body}, token=token)
    return doc[singular]["id"]


roles = {name: ensure("roles", "role", {"name": name}) for name in ("admin", "member", "reader", "service")}
projects = {name: ensure("projects", "project", {"name": name, "domain_id": "default"})
            for name in ("alpha", "beta", "service")}
users = {name: ensure("users", "user", {"name": name, "domain_id": "default", "password": PASSWORD})
         for name in ("alice", "bob", "carol", "zaqar")}
for user, project, role in [("alice", "alpha", "admin"), ("bob", "alpha", "member"),
                            ("carol", "beta", "member"), ("zaqar", "service", "service"),
                            ("zaqar", "service", "admin")]:
    call("PUT", f"/projects/{projects[project]}/users/{users[user]}/roles/{roles[role]}", token=token)
print("keystone: projects", json.dumps(projects), file=sys.stderr)
