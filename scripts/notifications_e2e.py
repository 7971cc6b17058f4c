"""Checks for scripts/notifications.sh (phase1 before a kill -9 of the server, phase2 after)."""
import email
import json
import os
import sys
import time
import urllib.request
import uuid

API, HOOK, LOG = os.environ["ZAQAR_API"], os.environ["HOOK_URL"], os.environ["HOOK_LOG"]
MAILDIR, DOWN, WORK = os.environ["MAILDIR"], os.environ["DOWN_FILE"], os.environ["WORK"]
HEADERS = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": "notify-e2e",
           "Content-Type": "application/json"}


def call(method, path, body=None):
    req = urllib.request.Request(API + path, method=method, headers=HEADERS,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req) as r:
        data = r.read()
        return r.status, json.loads(data) if data else None


def deliveries(path=None, ok_only=True):
    if not os.path.exists(LOG):
        return []
    out = []
    with open(LOG) as f:
        for line in f:
            d = json.loads(line)
            if (not ok_only or d["status"] == 200) and (path is None or d["path"] == path):
                out.append(d)
    return out


def wait(what, pred, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    sys.exit(f"FAIL: {what} within {timeout}s")


def ok(name):
    print(f"ok {name}", flush=True)


def phase1():
    st, _ = call("POST", "/v2/queues/e2e/subscriptions", {"subscriber": HOOK + "/hook", "ttl": 3600})
    assert st == 201
    st, _ = call("POST", "/v2/queues/e2e/subscriptions",
                 {"subscriber": "mailto:ops@example.com?subject=Zaqar%20e2e", "ttl": 3600,
                  "options": {"from": "Zaqar <zaqar@example.com>"}})
    assert st == 201
    st, doc = call("POST", "/v2/queues/e2e/messages",
                   {"messages": [{"body": {"n": i}} for i in range(3)]})
    assert st == 201
    ids = [r.rsplit("/", 1)[1] for r in doc["resources"]]
    got = wait("3 webhook deliveries", lambda: (lambda d: d if len(d) >= 3 else None)(deliveries("/hook")))
    bodies = [json.loads(d["body"]) for d in got[:3]]
    assert [b["body"]["n"] for b in bodies] == [0, 1, 2], bodies
    assert [b["message_id"] for b in bodies] == ids, bodies
    assert all(b["queue_name"] == "e2e" and b["Message_Type"] == "Notification" for b in bodies)
    assert all({k.lower(): v for k, v in d["headers"].items()}.get("x-zaqar-signature", "")
               .startswith("t=") for d in got)
    failed = deliveries("/hook", ok_only=False)
    assert failed[0]["status"] == 503 and failed[1]["status"] == 503, "the first two answers failed"
    ok("webhook: 3 messages delivered in order after 2 failures (retried), signed")

    def mails():
        files = os.listdir(os.path.join(MAILDIR, "new"))
        return files if len(files) >= 3 else None
    files = wait("3 e-mails", mails)
    texts = []
    for name in files:
        with open(os.path.join(MAILDIR, "new", name), "rb") as f:
            m = email.message_from_binary_file(f)
        assert m["Subject"] == "Zaqar e2e", m["Subject"]
        assert "ops@example.com" in m["To"]
        texts.append(m.get_payload(decode=True).decode())
    assert sorted(json.loads(t)["body"]["n"] for t in texts) == [0, 1, 2], texts
    ok("e-mail: 3 messages over SMTP (aiosmtpd), subject from the mailto URI")

    for i in range(5):
        call("POST", "/v2/topics/fanout/subscriptions", {"subscriber": f"{HOOK}/topic{i}"})
    call("POST", "/v2/topics/fanout/messages", {"messages": [{"body": "hello subscribers"}]})
    for i in range(5):
        wait(f"topic subscriber {i}", lambda i=i: deliveries(f"/topic{i}"))
    ok("topic fan-out to 5 subscribers")

    # The receiver goes down; a message is posted and acknowledged; then the server dies.
    open(DOWN, "w").close()
    call("POST", "/v2/queues/e2e/messages", {"messages": [{"body": "survives kill -9"}]})
    wait("a failed delivery attempt", lambda: [d for d in deliveries("/hook", ok_only=False)
                                               if "survives" in d["body"] and d["status"] == 503])
    ok("receiver down: the delivery is being retried")


def phase2():
    got = wait("the notification after the restart",
               lambda: [d for d in deliveries("/hook") if "survives kill -9" in d["body"]], 90)
    assert len(got) >= 1
    ok("after kill -9 and restart, the pending notification was delivered")


{"phase1": phase1, "phase2": phase2}[sys.argv[1]]()
