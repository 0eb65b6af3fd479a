#!/usr/bin/env python3
"""A webhook receiver for the notification tests: records every POST it gets and answers
as told.

    webhook_receiver.py DIR

Listens on 127.0.0.1 at a free port and writes it to DIR/port once it accepts. Each
request is appended to DIR/requests.jsonl as one JSON line {"path", "headers", "body"}
(the body as text), after the answer is decided. DIR/mode, read per request, says how to
answer: "ok" (the default: 200), "fail" (500), "hang" (answer nothing for 60 s), "redirect"
(302, which counts as delivered). Stop it by its PID.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
lock = threading.Lock()


def mode():
    try:
        with open(os.path.join(DIR, "mode")) as f:
            return f.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        how = mode()
        if how == "hang":
            time.sleep(60)
            return
        status = {"ok": 200, "fail": 500, "redirect": 302}.get(how, 200)
        if status < 300 or status == 302:
            # Only what the receiver accepted counts as received.
            with lock, open(os.path.join(DIR, "requests.jsonl"), "a") as f:
                f.write(json.dumps({"path": self.path, "headers": dict(self.headers),
                                    "body": body}) + "\n")
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
