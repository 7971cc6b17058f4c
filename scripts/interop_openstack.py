"""Drives `openstack messaging ...` (python-openstackclient with python-zaqarclient's plugin)
against zaqar-server behind Keystone. Arguments: KEYSTONE_V3_URL PASSWORD SERVER_URL."""
import json
import os
import subprocess
import sys
import time
import uuid

KEYSTONE, PASSWORD, SERVER = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3].rstrip("/")
OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
FAILED = []
CLIENT_ID = str(uuid.uuid4())


def env(user, project):
    e = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    e.update({
        "OS_AUTH_URL": KEYSTONE, "OS_IDENTITY_API_VERSION": "3", "OS_AUTH_TYPE": "password",
        "OS_USERNAME": user, "OS_PASSWORD": PASSWORD, "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public",
        "OS_MESSAGE_CLIENT_ID": CLIENT_ID,
    })
    return e


def run(who, *args, ok=True):
    """`openstack <args>` as who=(user, project); parsed JSON when -f json is given."""
    cmd = [OPENSTACK, *args]
    p = subprocess.run(cmd, env=env(*who), capture_output=True, text=True, timeout=120)
    if ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-600:]}")
    if not ok:
        return p
    return json.loads(p.stdout) if "json" in args and p.stdout.strip() else p.stdout


def check(name):
    def deco(fn):
        t = time.monotonic()
        try:
            fn()
            print(f"ok {name} ({time.monotonic() - t:.1f}s)")
        except Exception as e:  # noqa: BLE001 - report and go on
            FAILED.append(name)
            print(f"FAIL {name}: {e}")
        return fn
    return deco


ADMIN = ("admin", "admin")
BOB = ("bob", "alpha")
CAROL = ("carol", "beta")
Q = f"osc-{uuid.uuid4().hex[:8]}"


@check("register the messaging endpoint in Keystone's catalog")
def _catalog():
    services = run(ADMIN, "service", "list", "-f", "json")
    sid = next((s["ID"] for s in services if s["Type"] == "messaging"), None)
    if sid is None:
        sid = run(ADMIN, "service", "create", "--name", "zaqar", "messaging", "-f", "json")["id"]
    for e in run(ADMIN, "endpoint", "list", "--service", sid, "-f", "json"):
        run(ADMIN, "endpoint", "delete", e["ID"])
    for interface in ("public", "internal", "admin"):
        run(ADMIN, "endpoint", "create", "--region", "RegionOne", sid, interface, SERVER)


@check("messaging ping and health")
def _ping():
    run(BOB, "messaging", "ping")
    run(ADMIN, "messaging", "health")


@check("queue create / list / metadata / stats")
def _queue():
    run(BOB, "messaging", "queue", "create", Q)
    names = [q["Name"] for q in run(BOB, "messaging", "queue", "list", "-f", "json")]
    assert Q in names, names
    run(BOB, "messaging", "queue", "set", "metadata", Q, json.dumps({"owner": "osc"}))
    meta = run(BOB, "messaging", "queue", "get", "metadata", Q, "-f", "json")
    assert meta["Metadata"]["owner"] == "osc", meta
    # Another project sees none of it.
    names = [q["Name"] for q in run(CAROL, "messaging", "queue", "list", "-f", "json")]
    assert Q not in names, names


@check("message post / list")
def _messages():
    msgs = [{"body": {"event": i}, "ttl": 300} for i in range(3)]
    run(BOB, "messaging", "message", "post", Q, json.dumps(msgs))
    listed = run(BOB, "messaging", "message", "list", Q, "--echo", "-f", "json")
    assert sorted(m["Body"]["event"] for m in listed) == [0, 1, 2], listed
    stats = run(BOB, "messaging", "queue", "stats", Q, "-f", "json")["Stats"]
    assert stats["messages"]["free"] == 3, stats


@check("claim create / query / renew / release")
def _claims():
    claimed = run(BOB, "messaging", "claim", "create", Q, "--ttl", "60", "--grace", "60",
                  "--limit", "2", "-f", "json")
    assert len(claimed) == 2, claimed
    # The claim id is the last path segment of the claimed messages' claim href.
    stats = run(BOB, "messaging", "queue", "stats", Q, "-f", "json")["Stats"]
    assert stats["messages"]["claimed"] == 2, stats
    listed = run(BOB, "messaging", "message", "list", Q, "--echo", "--include-claimed",
                 "-f", "json")
    assert len(listed) == 3, listed
    # zaqarclient prints the claimed messages; find the claim id through the API's listing.
    import urllib.request
    token = run(BOB, "token", "issue", "-f", "json")["id"]
    req = urllib.request.Request(f"{SERVER}/v2/queues/{Q}/messages?echo=true&include_claimed=true",
                                 headers={"X-Auth-Token": token, "Client-ID": str(uuid.uuid4())})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = json.load(r)
    claim_ids = {m["href"].split("claim_id=")[1] for m in body["messages"] if "claim_id=" in m["href"]}
    assert len(claim_ids) == 1, body
    cid = claim_ids.pop()
    shown = run(BOB, "messaging", "claim", "query", Q, cid, "-f", "json")
    assert len(shown) == 2, shown
    run(BOB, "messaging", "claim", "renew", Q, cid, "--ttl", "120")
    run(BOB, "messaging", "claim", "release", Q, cid)
    stats = run(BOB, "messaging", "queue", "stats", Q, "-f", "json")["Stats"]
    assert stats["messages"]["claimed"] == 0, stats


@check("subscription create / list / show / delete")
def _subscriptions():
    created = run(BOB, "messaging", "subscription", "create", Q, "http://127.0.0.1:9/hook",
                  "3600", "-f", "json")
    sid = created["ID"]
    subs = run(BOB, "messaging", "subscription", "list", Q, "-f", "json")
    assert [s["ID"] for s in subs] == [sid], subs
    shown = run(BOB, "messaging", "subscription", "show", Q, sid, "-f", "json")
    assert shown["Subscriber"] == "http://127.0.0.1:9/hook", shown
    run(BOB, "messaging", "subscription", "delete", Q, sid)
    assert run(BOB, "messaging", "subscription", "list", Q, "-f", "json") == []


@check("queue signed url")
def _signed():
    signed = run(BOB, "messaging", "queue", "signed", "url", Q, "--paths", "messages",
                 "--ttl-seconds", "300", "-f", "json")
    assert signed["Signature"] and signed["Paths"] == f"/v2/queues/{Q}/messages", signed


@check("queue purge / delete")
def _delete():
    run(BOB, "messaging", "queue", "purge", Q)
    assert run(BOB, "messaging", "message", "list", Q, "--echo", "-f", "json") == []
    run(BOB, "messaging", "queue", "delete", Q)
    names = [q["Name"] for q in run(BOB, "messaging", "queue", "list", "-f", "json")]
    assert Q not in names, names


if FAILED:
    print(f"{len(FAILED)} check(s) failed: {', '.join(FAILED)}")
    sys.exit(1)
print("all openstack CLI checks passed")
