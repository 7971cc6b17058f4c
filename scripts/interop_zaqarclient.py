#!/usr/bin/env python3
"""Interop test: drives a running zaqar-server through the official python-zaqarclient.

Usage: interop_zaqarclient.py URL        (e.g. http://127.0.0.1:8888)

Every check prints `ok <name>`; the first failing check prints `FAIL <name>: <reason>` and the
script exits 1 (with ZAQAR_INTEROP_KEEP_GOING=1 it runs the remaining checks too, then exits 1). Each run uses a fresh random project id and a unique queue-name prefix, so it can run
against a server that already holds data.

Notes on how python-zaqarclient 4.7.0 talks to the server (read from its source):
- The Client-ID it sends by default is a UUID4 in 32-hex form without dashes.
- `queue.exists()` is `HEAD /v2/queues/{name}`; `client.queue(name, force_create=True)` is a PUT
  with no body.
- `queue.metadata(new_meta)` first GETs the queue, then sends a JSON-patch (`add`/`replace` for the
  given keys, `remove` for every other key of the GET answer, reserved defaults included) with
  `Content-Type: application/openstack-messaging-v2.0-json-patch`, and keeps the PATCH answer.
- Listings only follow `links[rel=next]` when the iterator is put in stream mode (`.stream()`); the
  next href is requested as given (relative to the endpoint); paging ends on an empty page.
- `queue.messages(*ids)` / `queue.delete_messages(*ids)` send `ids` as a repeated query parameter
  (`?ids=a&ids=b`), which is how `requests` encodes a sequence.
- Boolean query parameters are sent as Python renders them (`echo=True`).
- The claim id of a new claim is taken from the `?claim_id=` of the first message href; a message's
  `claim_id` is parsed from its href, and `message.delete()` passes it as `?claim_id=`.
"""

import json
import os
import sys
import time
import traceback
import uuid

from zaqarclient.queues.v2 import client as zclient
from zaqarclient.queues.v2 import core
from zaqarclient.transport import errors as zerrors


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def raises(exc_type, fn, what):
    try:
        result = fn()
    except exc_type:
        return
    except zerrors.TransportError as e:
        raise CheckFailed(f"{what}: expected {exc_type.__name__} "
                          f"(HTTP {exc_type.code}), got {type(e).__name__}: {e}")
    raise CheckFailed(f"{what}: expected {exc_type.__name__} (HTTP {exc_type.code}), "
                      f"but the call succeeded with {result!r}")


def make_client(url, project, client_uuid=None):
    conf = {'auth_opts': {'backend': 'noauth',
                          'options': {'os_project_id': project}}}
    if client_uuid is not None:
        conf['client_uuid'] = client_uuid
    return zclient.Client(url, version=2, conf=conf)


def raw(cl):
    """(request, transport) for calling zaqarclient's low-level core API directly."""
    return cl._request_and_transport()


def canon(value):
    return json.dumps(value, sort_keys=True)


def ids_of(resources):
    return [r.rsplit('/', 1)[-1] for r in resources]


class Ctx:
    pass


T = Ctx()
CHECKS = []


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn
    return deco


def qname(suffix):
    return T.prefix + suffix


def stats(q):
    s = q.stats
    expect(isinstance(s, dict) and isinstance(s.get('messages'), dict),
           f"stats of {q.name}: expected {{'messages': {{...}}}}, got {s!r}")
    return s['messages']


def expect_counts(q, total, claimed, what):
    m = stats(q)
    got = {k: m.get(k) for k in ('total', 'claimed', 'free')}
    eq(got, {'total': total, 'claimed': claimed, 'free': total - claimed},
       f"{what}: stats of queue {q.name}")
    return m


def project_queue_names(cl, **params):
    it, _count = cl.queues(**params)
    return [q.name for q in it.stream()]


# ---------------------------------------------------------------------------------------------
# checks, run in order; later ones use state (T.*) set by earlier ones


@check("ping")
def _ping():
    expect(T.c.ping() is True, "client.ping() returned False (GET /v2/ping did not succeed)")


@check("homedoc")
def _homedoc():
    doc = T.c.homedoc()
    expect(isinstance(doc, dict) and isinstance(doc.get('resources'), dict),
           f"GET /v2/ : expected a JSON-home document with 'resources', got {doc!r}")
    for rel in ('rel/queues', 'rel/queue', 'rel/messages', 'rel/post_claim'):
        expect(rel in doc['resources'], f"JSON-home lacks {rel}: {sorted(doc['resources'])}")


@check("queue create (explicit PUT) and exists (HEAD)")
def _queue_create():
    T.main = T.c.queue(qname('main'), force_create=True)
    expect(T.main.exists() is True, f"queue {T.main.name} does not exist after PUT (HEAD != 2xx)")
    # PUT on an existing queue is accepted again (204)
    T.c.queue(qname('main'), force_create=True)
    missing = T.c.queue(qname('never-created'), auto_create=False)
    expect(missing.exists() is False,
           f"HEAD on never-created queue {missing.name} did not answer 404")
    T.created = {T.main.name}


@check("queue list: paging over 14 queues")
def _queue_list():
    names = [qname(f'list-{i:02d}') for i in range(13)]
    for n in names:
        T.c.queue(n, force_create=True)
    T.created.update(names)
    expected = sorted(T.created)
    eq(len(expected), 14, "number of created queues")

    # default page size is 10 without streaming (one request, no paging)
    it, count = T.c.queues()
    first = [q.name for q in it]
    eq(first, expected[:10], "first page of GET /v2/queues (default limit 10)")
    eq(count, None, "count without with_count")

    # follow the `next` links with limit=4: 4 + 4 + 4 + 2, then the empty page ends it
    it, count = T.c.queues(limit=4, with_count=True)
    eq(count, 14, "count of GET /v2/queues?with_count=true")
    seen = [q.name for q in it.stream()]
    dups = sorted({n for n in seen if seen.count(n) > 1})
    expect(not dups, f"queues listed more than once while paging: {dups}")
    missing = sorted(set(expected) - set(seen))
    expect(not missing, f"queues missing from the paged listing: {missing}")
    extra = sorted(set(seen) - set(expected))
    expect(not extra, f"queues listed that this run did not create (fresh project!): {extra}")
    eq(seen, expected, "paged queue listing order (by name)")

    # href of each listed queue
    it, _ = T.c.queues(limit=20)
    for q in it:
        eq(q.href, f"/v2/queues/{q.name}", f"href of listed queue {q.name}")


@check("queue list: projects are isolated")
def _isolation():
    other = make_client(T.url, 'other-' + uuid.uuid4().hex)
    eq(project_queue_names(other), [], "queues visible in another, fresh project")
    q = other.queue(qname('main'), auto_create=False)
    expect(q.exists() is False, "queue of project A is visible (HEAD) from project B")


@check("queue metadata get")
def _metadata_get():
    md = T.main.metadata()
    expect(isinstance(md, dict), f"GET /v2/queues/{T.main.name}: expected an object, got {md!r}")
    eq(md.get('_default_message_ttl'), 3600, "reserved default _default_message_ttl")
    eq(md.get('_max_messages_post_size'), 262144, "reserved default _max_messages_post_size")
    user_keys = sorted(k for k in md if not k.startswith('_'))
    eq(user_keys, [], "user metadata keys of a queue created without metadata")


@check("queue metadata set (PATCH json-patch)")
def _metadata_set():
    q = T.main
    new = q.metadata(new_meta={'description': 'interop test', 'max_timeout': 100})
    expect(isinstance(new, dict), f"PATCH answer: expected the metadata object, got {new!r}")
    eq(new.get('description'), 'interop test', "description in PATCH answer")
    eq(new.get('max_timeout'), 100, "max_timeout in PATCH answer")
    fresh = q.metadata(force_reload=True)
    eq(fresh.get('description'), 'interop test', "description after reload")
    eq(fresh.get('max_timeout'), 100, "max_timeout after reload")
    eq(fresh.get('_default_message_ttl'), 3600,
       "_default_message_ttl after a patch that removed the (absent) reserved keys")

    # second update: replace one key, add one, drop one (client sends `remove` for it)
    q.metadata(new_meta={'description': 'changed', 'tags': ['a', 'b']})
    fresh = q.metadata(force_reload=True)
    eq(fresh.get('description'), 'changed', "description after replace")
    eq(fresh.get('tags'), ['a', 'b'], "tags after add")
    expect('max_timeout' not in fresh, f"max_timeout still present after remove: {fresh!r}")
    eq(sorted(k for k in fresh if not k.startswith('_')), ['description', 'tags'],
       "user metadata keys after the second update")

    # detailed listing carries the metadata
    it, _ = T.c.queues(detailed=True, limit=20)
    by_name = {x.name: x for x in it}
    expect(q.name in by_name, f"{q.name} missing from detailed listing")
    listed_md = by_name[q.name]._metadata
    expect(isinstance(listed_md, dict), f"detailed listing: metadata missing: {listed_md!r}")
    eq(listed_md.get('description'), 'changed', "description in detailed listing")


@check("queue metadata: reserved _default_message_ttl applies to posts")
def _metadata_reserved():
    q = T.c.queue(qname('meta'), force_create=True)
    T.created.add(q.name)
    md = q.metadata(new_meta={'_default_message_ttl': 600})
    eq(md.get('_default_message_ttl'), 600, "_default_message_ttl in PATCH answer")
    res = q.post({'body': 'no ttl given'})['resources']
    m = q.message(ids_of(res)[0])
    eq(m.ttl, 600, "ttl of a message posted without ttl to a queue with _default_message_ttl=600")


@check("message post (single)")
def _post_single():
    q = T.main
    r = q.post({'body': {'event': 'single', 'n': 1}, 'ttl': 300})
    expect(isinstance(r, dict) and isinstance(r.get('resources'), list),
           f"POST messages answer: expected {{'resources': [...]}}, got {r!r}")
    eq(len(r['resources']), 1, "number of resources for one posted message")
    href = r['resources'][0]
    prefix = f"/v2/queues/{q.name}/messages/"
    expect(href.startswith(prefix) and len(href) > len(prefix),
           f"resource href {href!r} does not start with {prefix!r}")
    T.single_id = ids_of(r['resources'])[0]


@check("message post (batch, any JSON body)")
def _post_batch():
    q = T.main
    bodies = [None, "text", 42, 1.5, True, [1, "two", None], {"nested": {"a": [1, 2]}, "u": "é✓"}]
    r = q.post([{'body': b, 'ttl': 300 + i} for i, b in enumerate(bodies)])
    eq(len(r['resources']), len(bodies), "number of resources for a batch post")
    ids = ids_of(r['resources'])
    eq(len(set(ids)), len(ids), "distinct ids in a batch post")
    expect(T.single_id not in ids, "batch reused the id of an earlier message")
    T.batch_ids = ids
    T.batch_bodies = bodies
    expect_counts(q, 1 + len(bodies), 0, "after posting 1 + 7 messages")


@check("get message by id")
def _get_one():
    q = T.main
    m = q.message(T.single_id)
    eq(m.id, T.single_id, "id")
    eq(m.body, {'event': 'single', 'n': 1}, "body")
    eq(m.ttl, 300, "ttl")
    expect(isinstance(m.age, int) and 0 <= m.age <= 60, f"age out of range: {m.age!r}")
    eq(m.href, f"/v2/queues/{q.name}/messages/{T.single_id}", "href")
    eq(m.claim_id, None, "claim_id of an unclaimed message")
    for mid, body in zip(T.batch_ids, T.batch_bodies):
        # compare the JSON text so that e.g. true vs 1 or 1.5 vs 1 are told apart
        eq(canon(q.message(mid).body), canon(body), f"body of batch message {mid}")
    raises(zerrors.ResourceNotFound, lambda: q.message('ffffffffffffffffffffffff'),
           "GET of an unknown message id")


@check("get many messages by ids (comma-separated ?ids=a,b)")
def _get_many_comma():
    # the form of the API reference; the client itself sends a repeated parameter (next check)
    q = T.main
    want = T.batch_ids[:4]
    req, trans = raw(T.c)
    got = core.message_get_many(trans, req, q.name, ','.join(want))
    expect(isinstance(got, dict) and isinstance(got.get('messages'), list),
           f"GET ?ids=a,b: expected {{'messages': [...]}}, got {got!r}")
    eq(sorted(m['id'] for m in got['messages']), sorted(want), "ids returned by GET ?ids=a,b,c,d")


@check("get many messages by ids (client: repeated ?ids=a&ids=b)")
def _get_many():
    q = T.main
    want = T.batch_ids[:4]
    got = list(q.messages(*want))
    eq(sorted(m.id for m in got), sorted(want),
       "ids returned by GET ?ids=a&ids=b&ids=c&ids=d (as python-zaqarclient sends them)")
    bodies = {m.id: m.body for m in got}
    for mid, body in zip(want, T.batch_bodies[:4]):
        eq(canon(bodies[mid]), canon(body), f"body of {mid} in GET ?ids=")
    got = list(q.messages(T.single_id, 'ffffffffffffffffffffffff'))
    eq([m.id for m in got], [T.single_id], "GET ?ids= with one unknown id (skipped)")
    raises(zerrors.ResourceNotFound,
           lambda: list(q.messages('ffffffffffffffffffffffff', 'eeeeeeeeeeeeeeeeeeeeeeee')),
           "GET ?ids= with only unknown ids")


@check("message listing: paging over 25 messages (echo=True)")
def _listing_paging():
    q = T.c.queue(qname('paging'), force_create=True)
    T.created.add(q.name)
    T.paging = q
    r = q.post([{'body': {'seq': i}, 'ttl': 600} for i in range(25)])
    ids = ids_of(r['resources'])
    eq(len(ids), 25, "resources for 25 posted messages")
    T.paging_ids = ids

    first = list(q.messages(echo=True))
    eq([m.body['seq'] for m in first], list(range(10)), "first page (default limit 10)")

    allm = list(q.messages(echo=True, limit=7).stream())
    eq([m.body['seq'] for m in allm], list(range(25)), "seq of all messages paged with limit=7")
    eq([m.id for m in allm], ids, "ids of paged messages vs. ids returned by the post")
    for m in allm:
        eq(m.href, f"/v2/queues/{q.name}/messages/{m.id}", "href of listed message")
        eq(m.ttl, 600, "ttl of listed message")

    allm = list(q.messages(echo=True, limit=20).stream())
    eq([m.body['seq'] for m in allm], list(range(25)), "seq of all messages paged with limit=20")


@check("message listing: echo hides the client's own messages")
def _listing_echo():
    q = T.paging
    eq(list(q.messages().stream()), [], "listing without echo by the poster")
    # same Client-ID spelled with dashes is the same client
    dashed = make_client(T.url, T.project, client_uuid=str(uuid.UUID(T.c.client_uuid)))
    eq(list(dashed.queue(q.name, auto_create=False).messages().stream()), [],
       "listing without echo by the poster's Client-ID written with dashes")
    seen = [m.body['seq'] for m in T.c2.queue(q.name, auto_create=False).messages().stream()]
    eq(seen, list(range(25)), "listing without echo by another client")


@check("claim create (limit, ttl, grace)")
def _claim_create():
    q = T.c.queue(qname('work'), force_create=True)
    T.created.add(q.name)
    T.work = q
    r = q.post([{'body': {'job': i}, 'ttl': 600} for i in range(5)])
    T.work_ids = ids_of(r['resources'])

    claim = q.claim(ttl=120, grace=60, limit=3)
    expect(claim.id, f"no claim id (POST claims answered {claim.id!r})")
    msgs = list(claim)
    eq([m.body['job'] for m in msgs], [0, 1, 2], "bodies of claimed messages (oldest first)")
    eq([m.id for m in msgs], T.work_ids[:3], "ids of claimed messages")
    for m in msgs:
        eq(m.claim_id, claim.id, f"claim_id in href of claimed message {m.href}")
        eq(m.ttl, 600, "ttl of a claimed message that outlives the claim")
    T.claim = claim
    T.claimed_msgs = msgs
    expect_counts(q, 5, 3, "after claiming 3 of 5")


@check("claim extends the life of short-lived messages (ttl + grace)")
def _claim_extend():
    q = T.c.queue(qname('short'), force_create=True)
    T.created.add(q.name)
    q.post({'body': 'short', 'ttl': 60})
    claim = q.claim(ttl=120, grace=90, limit=1)
    msgs = list(claim)
    eq(len(msgs), 1, "claimed messages")
    eq(msgs[0].ttl, 210, "ttl of a 60 s message claimed with ttl=120 grace=90")
    claim.delete()


@check("claim get")
def _claim_get():
    c = T.work.claim(id=T.claim.id)
    msgs = list(c)
    eq(sorted(m.id for m in msgs), sorted(T.work_ids[:3]), "messages of GET claim")
    for m in msgs:
        eq(m.claim_id, T.claim.id, "claim_id in href of a message of GET claim")
    eq(c.ttl, 120, "claim ttl")
    age = c.age
    expect(isinstance(age, int) and 0 <= age <= 60, f"claim age out of range: {age!r}")
    raises(zerrors.ResourceNotFound,
           lambda: list(T.work.claim(id='ffffffffffffffffffffffff')), "GET of an unknown claim")


@check("claim update (renew)")
def _claim_update():
    T.claim.update(ttl=300, grace=90)
    c = T.work.claim(id=T.claim.id)
    eq(c.ttl, 300, "claim ttl after PATCH")
    eq(sorted(m.id for m in c), sorted(T.work_ids[:3]), "messages of the renewed claim")
    m = T.work.message(T.work_ids[0])
    eq(m.claim_id, T.claim.id, "claim_id of a message after renew")
    raises(zerrors.ResourceNotFound,
           lambda: T.work.claim(id='ffffffffffffffffffffffff', ttl=60).update(ttl=60),
           "PATCH of an unknown claim")


@check("listing hides claimed messages unless include_claimed")
def _listing_claimed():
    q2 = T.c2.queue(T.work.name, auto_create=False)
    eq([m.body['job'] for m in q2.messages().stream()], [3, 4], "listing of free messages")
    allm = list(q2.messages(include_claimed=True).stream())
    eq([m.body['job'] for m in allm], [0, 1, 2, 3, 4], "listing with include_claimed")
    eq([m.claim_id for m in allm], [T.claim.id] * 3 + [None] * 2,
       "claim ids (from hrefs) in listing with include_claimed")


@check("deleting a claimed message needs its claim id")
def _delete_claimed_needs_claim():
    req, trans = raw(T.c)
    raises(zerrors.ForbiddenError,
           lambda: core.message_delete(trans, req, T.work.name, T.work_ids[0]),
           "DELETE of a claimed message without claim_id")
    eq(T.work.message(T.work_ids[0]).id, T.work_ids[0], "message still there after the 403")


@check("delete claimed messages through the claim's message objects")
def _delete_claimed():
    for m in T.claimed_msgs[:2]:
        m.delete()
    for mid in T.work_ids[:2]:
        raises(zerrors.ResourceNotFound, lambda: T.work.message(mid),
               f"GET of deleted claimed message {mid}")
    c = T.work.claim(id=T.claim.id)
    eq([m.id for m in c], [T.work_ids[2]], "messages left in the claim")
    expect_counts(T.work, 3, 1, "after deleting 2 claimed messages")


@check("claim release (messages claimable again)")
def _claim_release():
    old = T.claim.id
    T.claim.delete()
    raises(zerrors.ResourceNotFound, lambda: list(T.work.claim(id=old)),
           "GET of a released claim")
    eq(T.work.message(T.work_ids[2]).claim_id, None, "claim_id of a released message")
    expect_counts(T.work, 3, 0, "after release")

    claim = T.work.claim(ttl=60, grace=60, limit=10)
    msgs = list(claim)
    eq([m.body['job'] for m in msgs], [2, 3, 4], "messages of a new claim after release")
    expect(claim.id and claim.id != old, f"new claim id {claim.id!r} vs released {old!r}")
    expect_counts(T.work, 3, 3, "after claiming everything")

    empty = T.work.claim(ttl=60, grace=60, limit=5)
    eq(empty.id, None, "claim id when nothing is claimable (204)")
    eq(list(empty), [], "messages of a claim when nothing is claimable")
    claim.delete()
    expect_counts(T.work, 3, 0, "after releasing the second claim")


@check("pop")
def _pop():
    q = T.c.queue(qname('pop'), force_create=True)
    T.created.add(q.name)
    ids = ids_of(q.post([{'body': {'p': i}, 'ttl': 600} for i in range(5)])['resources'])

    popped = list(q.pop(count=2))
    eq([m.body['p'] for m in popped], [0, 1], "bodies popped (oldest first)")
    eq([m.id for m in popped], ids[:2], "ids popped")
    for mid in ids[:2]:
        raises(zerrors.ResourceNotFound, lambda: q.message(mid), f"GET of popped message {mid}")
    expect_counts(q, 3, 0, "after popping 2 of 5")

    claim = q.claim(ttl=60, grace=60, limit=1)
    eq([m.id for m in claim], [ids[2]], "claimed before pop")
    popped = list(q.pop(count=5))
    eq([m.body['p'] for m in popped], [3, 4], "pop skips claimed messages")
    expect_counts(q, 1, 1, "after popping all unclaimed")
    eq(list(q.pop(count=1)), [], "pop with only claimed messages left")
    claim.delete()
    popped = list(q.pop(count=1))
    eq([m.id for m in popped], [ids[2]], "pop after release")
    expect_counts(q, 0, 0, "after popping everything")


@check("queue stats (counts, oldest/newest)")
def _stats():
    q = T.main
    n = 1 + len(T.batch_ids)
    m = expect_counts(q, n, 0, "main queue")
    expect(isinstance(m.get('oldest'), dict) and isinstance(m.get('newest'), dict),
           f"stats lack oldest/newest: {m!r}")
    eq(m['oldest'].get('href'), f"/v2/queues/{q.name}/messages/{T.single_id}", "oldest href")
    eq(m['newest'].get('href'), f"/v2/queues/{q.name}/messages/{T.batch_ids[-1]}", "newest href")
    claim = q.claim(ttl=60, grace=60, limit=2)
    eq(len(list(claim)), 2, "claimed for stats")
    expect_counts(q, n, 2, "main queue with a claim of 2")
    claim.delete()
    expect_counts(q, n, 0, "main queue after release")
    m = expect_counts(T.c.queue(qname('never-created'), auto_create=False), 0, 0,
                      "missing queue")
    expect('oldest' not in m and 'newest' not in m, f"empty stats have oldest/newest: {m!r}")


@check("delete messages by ids (comma-separated ?ids=a,b)")
def _delete_by_ids_comma():
    q = T.c.queue(qname('del'), force_create=True)
    T.created.add(q.name)
    ids = ids_of(q.post([{'body': i} for i in range(4)])['resources'])
    req, trans = raw(T.c)
    core.message_delete_many(trans, req, q.name, ','.join(ids[:3]))
    eq([m.id for m in q.messages(echo=True).stream()], ids[3:],
       "messages left after DELETE ?ids=a,b,c")


@check("delete messages by ids (client: repeated ?ids=a&ids=b)")
def _delete_by_ids():
    q = T.main
    doomed = T.batch_ids[:3]
    q.delete_messages(*doomed)  # DELETE ?ids=a&ids=b&ids=c
    for mid in doomed:
        raises(zerrors.ResourceNotFound, lambda: q.message(mid), f"GET of deleted message {mid}")
    left = [m.id for m in q.messages(echo=True, limit=20).stream()]
    eq(left, [T.single_id] + T.batch_ids[3:], "messages left after delete by ids")
    expect_counts(q, 1 + len(T.batch_ids) - 3, 0, "after deleting 3 by ids")
    # unknown ids are skipped silently (204)
    q.delete_messages('ffffffffffffffffffffffff')
    expect_counts(q, 1 + len(T.batch_ids) - 3, 0, "after deleting an unknown id")


@check("queue delete")
def _queue_delete():
    q = T.work
    q.delete()
    expect(q.exists() is False, f"queue {q.name} still exists (HEAD) after DELETE")
    T.created.discard(q.name)
    names = project_queue_names(T.c, limit=5)
    expect(q.name not in names, f"deleted queue {q.name} still listed")
    eq(names, sorted(T.created), "queue listing after the delete")
    expect_counts(q, 0, 0, "deleted queue")
    eq(list(q.messages(echo=True, include_claimed=True).stream()), [],
       "messages of a deleted queue")
    # deleting again is fine (204)
    q.delete()


@check("cleanup: delete every queue of the project")
def _cleanup():
    for n in sorted(T.created):
        T.c.queue(n, auto_create=False).delete()
    eq(project_queue_names(T.c), [], "queues left in the project")
    T.created.clear()


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} URL", file=sys.stderr)
        return 2
    T.url = sys.argv[1].rstrip('/')
    T.project = 'interop-' + uuid.uuid4().hex
    T.prefix = 'it' + uuid.uuid4().hex[:8] + '-'
    T.c = make_client(T.url, T.project)
    T.c2 = make_client(T.url, T.project)  # another Client-ID, same project
    print(f"server {T.url}, project {T.project}, queue prefix {T.prefix}, "
          f"client ids {T.c.client_uuid} / {T.c2.client_uuid}")
    keep_going = os.environ.get('ZAQAR_INTEROP_KEEP_GOING', '') not in ('', '0')
    start = time.monotonic()
    failed = []
    for name, fn in CHECKS:
        try:
            fn()
        except CheckFailed as e:
            print(f"FAIL {name}: {e}")
            failed.append(name)
        except Exception as e:  # client errors (HTTP status mapped to exceptions) and bugs
            print(f"FAIL {name}: unexpected {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stdout)
            failed.append(name)
        else:
            print(f"ok {name}")
            continue
        if not keep_going:
            return 1
    elapsed = time.monotonic() - start
    if failed:
        print(f"{len(failed)} of {len(CHECKS)} checks failed ({elapsed:.1f}s); later checks may "
              f"fail as a consequence of earlier ones: {failed}")
        return 1
    print(f"all {len(CHECKS)} checks passed in {elapsed:.1f}s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
