#!/usr/bin/env python3
"""Interop test of the WebSocket transport with third-party clients: PyPI `websocket-client`
(JSON text and MessagePack binary frames, via `msgpack`) and python-zaqarclient's own
WebSocket transport (`zaqarclient.transport.ws.WebsocketTransport`).

Usage: interop_ws.py WS_URL HTTP_URL     (e.g. ws://127.0.0.1:9000/ http://127.0.0.1:8888)

Every check prints `ok <name>`; the first failing check prints `FAIL <name>: <reason>` and the
script exits 1 (with ZAQAR_INTEROP_KEEP_GOING=1 it runs the remaining checks too, then exits 1).
Each run uses a fresh random project id, so it can run against a server that holds data.
"""

import json
import os
import sys
import time
import traceback
import urllib.request
import uuid

import msgpack
import websocket  # websocket-client
from zaqarclient.transport import request as zrequest
from zaqarclient.transport import ws as zws


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


class Ctx:
    pass


T = Ctx()
CHECKS = []


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn
    return deco


def headers():
    return {'Client-ID': T.client_id, 'X-Project-ID': T.project}


def send(conn, action, body=None, binary=False, hdrs=None):
    doc = {'action': action, 'headers': hdrs if hdrs is not None else headers()}
    if body is not None:
        doc['body'] = body
    if binary:
        conn.send(msgpack.packb(doc), opcode=websocket.ABNF.OPCODE_BINARY)
    else:
        conn.send(json.dumps(doc))
    return doc


def recv(conn):
    opcode, data = conn.recv_data()
    if opcode == websocket.ABNF.OPCODE_BINARY:
        return msgpack.unpackb(data), True
    if opcode == websocket.ABNF.OPCODE_TEXT:
        return json.loads(data), False
    raise CheckFailed(f"unexpected frame opcode {opcode}")


def call(action, body=None, binary=False, hdrs=None):
    """One request on the main connection; returns (status, body, response)."""
    doc = send(T.ws, action, body, binary, hdrs)
    resp, was_binary = recv(T.ws)
    eq(was_binary, binary, f"{action}: response frame type (binary)")
    eq(resp['request']['action'], doc['action'], f"{action}: echoed action")
    eq(resp['request']['api'], 'v2', f"{action}: echoed api")
    return resp['headers']['status'], resp['body'], resp


def q(suffix):
    return T.prefix + suffix


# ---------------------------------------------------------------------------------------------
# checks, run in order; later ones use state (T.*) set by earlier ones


@check("connect and authenticate (no auth configured)")
def _auth():
    T.ws = websocket.create_connection(T.ws_url, timeout=20)
    status, body, _ = call('authenticate',
                           hdrs={'X-Auth-Token': 'unused', 'X-Project-ID': T.project})
    eq((status, body), (200, {'message': 'Authentified.'}), "authenticate")


@check("ping_node and get_home_doc")
def _ping():
    status, body, _ = call('ping_node', hdrs={})
    eq((status, body), (204, {}), "ping_node")
    status, body, _ = call('get_home_doc', hdrs={})
    eq(status, 200, "get_home_doc status")
    expect('rel/queues' in body.get('resources', {}), f"home document: {body!r}")


@check("queue_create / queue_get / queue_list")
def _queues():
    status, body, _ = call('queue_create', {'queue_name': q('main'),
                                            'metadata': {'description': 'interop'}})
    eq((status, body), (201, f"Queue {q('main')} created."), "queue_create")
    status, body, _ = call('queue_create', {'queue_name': q('main')})
    eq((status, body), (204, f"Queue {q('main')} created."), "queue_create (existing)")
    status, body, _ = call('queue_get', {'queue_name': q('main')})
    eq((status, body), (200, {'description': 'interop'}), "queue_get (stored metadata)")
    status, body, _ = call('queue_list', {'detailed': True})
    eq(status, 200, "queue_list status")
    eq(body, {'queues': [{'name': q('main'), 'metadata': {'description': 'interop'}}]},
       "queue_list")


@check("message_post / message_list / message_get / message_get_many")
def _messages():
    status, body, _ = call('message_post', {
        'queue_name': q('main'),
        'messages': [{'body': {'event': 'one'}, 'ttl': 300}, {'body': 'two'}, {'body': 3}]})
    eq(status, 201, "message_post status")
    T.ids = body['message_ids']
    eq(len(T.ids), 3, "message ids")
    status, body, _ = call('message_list', {'queue_name': q('main'), 'echo': True})
    eq(status, 200, "message_list status")
    eq([m['id'] for m in body['messages']], T.ids, "listed ids (FIFO)")
    eq([m['body'] for m in body['messages']], [{'event': 'one'}, 'two', 3], "listed bodies")
    eq(sorted(body['messages'][0]), ['age', 'body', 'claim_id', 'id', 'ttl'], "message keys")
    status, body, _ = call('message_list', {'queue_name': q('main')})
    eq(body, {'messages': []}, "message_list without echo (own messages hidden)")
    status, body, _ = call('message_get', {'queue_name': q('main'), 'message_id': T.ids[0]})
    eq(status, 200, "message_get status")
    eq(body['messages']['body'], {'event': 'one'}, "message_get: object under 'messages'")
    status, body, _ = call('message_get_many', {'queue_name': q('main'),
                                                'message_ids': T.ids[1:]})
    eq(sorted(m['id'] for m in body['messages']), sorted(T.ids[1:]), "message_get_many")


@check("claim_create / claim_get / claim_update / message_delete with claim / claim_delete")
def _claims():
    status, body, _ = call('claim_create', {'queue_name': q('main'), 'ttl': 120, 'grace': 60,
                                            'limit': 2})
    eq(status, 201, "claim_create status")
    cid = body['claim_id']
    eq([m['id'] for m in body['messages']], T.ids[:2], "claimed ids")
    expect(all(m['claim_id'] == cid for m in body['messages']), "claim_id of claimed messages")
    status, body, _ = call('claim_get', {'queue_name': q('main'), 'claim_id': cid})
    eq((status, body['ttl'], len(body['messages'])), (200, 120, 2), "claim_get")
    status, body, _ = call('claim_update', {'queue_name': q('main'), 'claim_id': cid,
                                            'ttl': 300})
    eq((status, body), (204, f"Claim {cid} updated."), "claim_update")
    status, body, _ = call('message_delete', {'queue_name': q('main'),
                                              'message_id': T.ids[0]})
    eq(status, 403, "message_delete of a claimed message without its claim")
    status, body, _ = call('message_delete', {'queue_name': q('main'),
                                              'message_id': T.ids[0], 'claim_id': cid})
    eq((status, body), (204, {}), "message_delete with the claim")
    status, body, _ = call('queue_get_stats', {'queue_name': q('main')})
    eq(body['messages']['total'], 2, "stats total")
    eq(body['messages']['claimed'], 1, "stats claimed")
    status, body, _ = call('claim_delete', {'queue_name': q('main'), 'claim_id': cid})
    eq((status, body), (204, f"Claim {cid} deleted."), "claim_delete")
    status, body, _ = call('claim_create', {'queue_name': q('nothing')})
    eq((status, body), (204, {'claim_id': None}), "claim_create with nothing to claim")


@check("MessagePack binary frames get MessagePack answers")
def _msgpack():
    status, body, _ = call('ping_node', hdrs={}, binary=True)
    eq(status, 204, "ping_node over MessagePack")
    status, body, _ = call('message_post', {'queue_name': q('packed'),
                                            'messages': [{'body': {'n': 1}}]}, binary=True)
    eq(status, 201, "message_post over MessagePack")
    status, body, _ = call('message_list', {'queue_name': q('packed'), 'echo': True},
                           binary=True)
    eq([m['body'] for m in body['messages']], [{'n': 1}], "message_list over MessagePack")


@check("pipelined requests: every one answered, each response carries its request")
def _pipelined():
    n = 50
    for i in range(n):
        send(T.ws, 'message_post', {'queue_name': q('pipe'), 'messages': [{'body': i}]},
             binary=(i % 2 == 1))
    seen = set()
    for _ in range(n):
        resp, binary = recv(T.ws)
        eq(resp['headers']['status'], 201, "pipelined message_post")
        i = resp['request']['body']['messages'][0]['body']
        eq(binary, i % 2 == 1, f"frame type of response {i}")
        expect(i not in seen, f"two responses for request {i}")
        seen.add(i)
    eq(len(seen), n, "responses")


@check("protocol errors are 400 answers, the connection stays open")
def _errors():
    T.ws.send('foo')
    resp, _ = recv(T.ws)
    eq(resp['headers']['status'], 400, "undecodable JSON")
    expect(resp['body']['error'].startswith("Can't decode text (JSON) request."),
           f"error text: {resp['body']!r}")
    eq(resp['request'], {'action': None, 'body': {}, 'headers': {}, 'api': 'v2'},
       "request of an undecodable frame")
    T.ws.send(b'123', opcode=websocket.ABNF.OPCODE_BINARY)
    resp, binary = recv(T.ws)
    expect(binary and resp['body']['error'].startswith(
        "Can't decode binary (MessagePack) request."), f"undecodable MessagePack: {resp!r}")
    T.ws.send(json.dumps([1, 2]))
    resp, _ = recv(T.ws)
    eq(resp['body'], {'error': 'Unexpected body type. Expected dict or dict like.'},
       "non-object payload")
    status, body, _ = call('queue_glorify', {})
    eq((status, body), (400, {'error': 'queue_glorify is not a valid action'}), "unknown action")
    status, body, _ = call('queue_get', {})
    eq((status, body), (400, {'error': 'Schema validation failed.'}), "schema violation")
    status, body, _ = call('queue_list', {}, hdrs={'Client-ID': 'nope', 'X-Project-ID': 'p'})
    eq((status, body.get('error')), (400, 'Wrong UUID value'), "bad Client-ID")
    status, body, _ = call('subscription_list', {'queue_name': q('main')})
    eq((status, body), (200, {'subscriptions': []}), "subscription_list of a queue without any")
    status, body, _ = call('pool_list', {})
    eq((status, body), (501, {'error': 'pool_list is not implemented'}), "pool_list")
    status, _, _ = call('ping_node', hdrs={})
    eq(status, 204, "connection still usable")


@check("both transports share one service: WebSocket posts are visible over HTTP")
def _cross_transport():
    req = urllib.request.Request(
        f"{T.http_url}/v2/queues/{q('main')}/stats", headers=headers())
    with urllib.request.urlopen(req, timeout=10) as r:
        stats = json.load(r)
    eq(stats['messages']['total'], 2, "HTTP stats of a queue filled over WebSocket")


@check("pop, purge and delete")
def _pop_purge_delete():
    status, body, _ = call('message_delete_many', {'queue_name': q('main'), 'pop': 1})
    eq((status, len(body['messages'])), (200, 1), "pop")
    status, body, _ = call('queue_purge', {'queue_name': q('main')})
    eq((status, body), (204, {}), "queue_purge")
    status, body, _ = call('queue_get_stats', {'queue_name': q('main')})
    eq(body['messages']['total'], 0, "stats after purge")
    for name in ('main', 'packed', 'pipe'):
        status, body, _ = call('queue_delete', {'queue_name': q(name)})
        eq((status, body), (204, f"Queue {q(name)} removed."), f"queue_delete {name}")
    status, body, _ = call('queue_get_stats', {'queue_name': q('main')})
    eq((status, body), (404, {'messages': {'claimed': 0, 'free': 0, 'total': 0}}),
       "stats of a deleted queue")
    T.ws.close()


@check("python-zaqarclient's WebsocketTransport")
def _zaqarclient():
    conf = {'auth_opts': {'backend': 'keystone',
                          'options': {'os_auth_token': 'unused',
                                      'os_project_id': T.project}}}
    with zws.WebsocketTransport(conf) as transport:
        def zcall(operation, content):
            req = zrequest.Request(T.ws_url, operation, content=json.dumps(content))
            resp = transport.send(req)  # raises on 4xx/5xx
            return resp.status_code, json.loads(resp.content)

        # The first send authenticates the connection (`authenticate` action).
        status, body = zcall('queue_create', {'queue_name': q('zc')})
        eq((status, body), (201, f"Queue {q('zc')} created."), "queue_create")
        status, body = zcall('message_post', {'queue_name': q('zc'),
                                              'messages': [{'body': 'hello', 'ttl': 60}]})
        eq(status, 201, "message_post")
        mid = body['message_ids'][0]
        status, body = zcall('message_list', {'queue_name': q('zc'), 'echo': True})
        eq([m['id'] for m in body['messages']], [mid], "message_list")
        status, body = zcall('claim_create', {'queue_name': q('zc')})
        eq(status, 201, "claim_create")
        cid = body['claim_id']
        status, body = zcall('message_delete', {'queue_name': q('zc'), 'message_id': mid,
                                                'claim_id': cid})
        eq(status, 204, "message_delete")
        try:
            zcall('message_get', {'queue_name': q('zc'), 'message_id': mid})
        except Exception as e:  # zaqarclient maps 404 to ResourceNotFound
            eq(type(e).__name__, 'ResourceNotFound', "message_get of a deleted message")
        else:
            raise CheckFailed("message_get of a deleted message did not fail")
        status, body = zcall('queue_delete', {'queue_name': q('zc')})
        eq((status, body), (204, f"Queue {q('zc')} removed."), "queue_delete")


def main():
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} WS_URL HTTP_URL", file=sys.stderr)
        return 2
    T.ws_url = sys.argv[1]
    T.http_url = sys.argv[2].rstrip('/')
    T.project = 'interop-ws-' + uuid.uuid4().hex
    T.client_id = str(uuid.uuid4())
    T.prefix = 'ws' + uuid.uuid4().hex[:8] + '-'
    print(f"server {T.ws_url} (HTTP {T.http_url}), project {T.project}, "
          f"websocket-client {websocket.__version__}, msgpack {msgpack.version}")
    keep_going = os.environ.get('ZAQAR_INTEROP_KEEP_GOING', '') not in ('', '0')
    start = time.monotonic()
    failed = []
    for name, fn in CHECKS:
        try:
            fn()
        except CheckFailed as e:
            print(f"FAIL {name}: {e}")
            failed.append(name)
        except Exception as e:
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
        print(f"{len(failed)} of {len(CHECKS)} checks failed ({elapsed:.1f}s): {failed}")
        return 1
    print(f"all {len(CHECKS)} checks passed in {elapsed:.1f}s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
