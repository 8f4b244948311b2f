#!/usr/bin/env python3
"""Loads http_server from many connections at once, then stops it.

    http_server_test.py HTTP_SERVER

For each stack allocator (ours, fixedsize, protected): starts the server on a
free port with 2 threads, sends requests on 32 keep-alive connections at once
(every answer must be 200 with the server's text, on the connection that
asked), closes them, sends SIGTERM while a storm of connections comes and
goes (so that the acceptor closes around accepts in flight), and expects the
server to exit 0 within STOP_TIMEOUT seconds and to say that no stackalloc
stack is left in use and none went without a guard.
"""

import http.client
import signal
import socket
import subprocess
import sys
import threading
import time

CONNECTIONS = 32
REQUESTS = 20
BODY = b"Hello from a coroutine on a stackalloc stack\n"
# Sanitizer builds are slow; a hang fails the test, not the machine.
TIMEOUT = 120
STOP_TIMEOUT = 30


def load(port, failures):
    """REQUESTS requests on one keep-alive connection."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        for i in range(REQUESTS):
            conn.request("GET", "/%d" % i)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or body != BODY:
                failures.append("status %d, body %r" % (response.status, body))
                return
            if response.getheader("Connection", "").lower() == "close":
                failures.append("the server closed a keep-alive connection")
                return
        conn.close()
    except OSError as e:
        failures.append("connection failed: %s" % e)


def storm(port, stop):
    """Connections opened and closed until stop is set (or refused)."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        except OSError:
            time.sleep(0.001)


def run(server, stack):
    proc = subprocess.Popen(
        [server, "--port=0", "--threads=2", "--stack=" + stack,
         "--stack_kib=64"],
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        prefix = "listening on 127.0.0.1:"
        if not line.startswith(prefix):
            return ["%s: first line %r, not %r..." % (stack, line, prefix)]
        port = int(line[len(prefix):])
        failures = []
        threads = [threading.Thread(target=load, args=(port, failures))
                   for _ in range(CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop = threading.Event()
        stormer = threading.Thread(target=storm, args=(port, stop))
        stormer.start()
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        stop.set()
        stormer.join()
        try:
            out, _ = proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return ["%s: still running %ds after SIGTERM" % (stack, STOP_TIMEOUT)]
        if proc.returncode != 0:
            failures.append("exit status %d" % proc.returncode)
        stopped = "stopped: 0 bytes of stackalloc stacks in use, 0 unguarded"
        if stopped not in out:
            failures.append("no %r in %r" % (stopped, out))
        return ["%s: %s" % (stack, f) for f in failures]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    failures = []
    for stack in ("ours", "fixedsize", "protected"):
        failures += run(argv[1], stack)
    for failure in failures:
        print("FAILED: " + failure)
    if not failures:
        print("%d connections x %d requests answered with each allocator; "
              "clean stops" % (CONNECTIONS, REQUESTS))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
