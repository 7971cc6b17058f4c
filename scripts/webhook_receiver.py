"""A webhook receiver for the notification tests: appends every request (method, path,
headers, body) as one JSON line to a file, and answers 503 to the first N requests (or to
every request while a 'down' file exists).

    python3 webhook_receiver.py PORT LOG_FILE [FAIL_FIRST] [DOWN_FILE]
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]
FAIL_FIRST = int(sys.argv[3]) if len(sys.argv) > 3 else 0
DOWN = sys.argv[4] if len(sys.argv) > 4 else None
lock = threading.Lock()
count = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        with lock:
            count += 1
            n = count
            down = DOWN is not None and os.path.exists(DOWN)
            status = 503 if (n <= FAIL_FIRST or down) else 200
            with open(LOG, "a") as f:
                f.write(json.dumps({"n": n, "status": status, "path": self.path,
                                    "headers": dict(self.headers), "body": body}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
