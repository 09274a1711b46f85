#!/usr/bin/env python3
"""qfs-delayproxy behaves like a slow network between live and dead peers (no timing upper bounds).

  delayproxy.py PROXY_BINARY BASE_PORT

- while the target port has no listener, connections to the proxy's port are refused (a dead
  peer's host refuses; it must not accept and then hang up);
- once the target listens, the proxy accepts within a second and forwards both ways, each
  direction delayed: an echo round trip takes at least twice the delay;
- an established connection ends (EOF) when the target process dies, and new ones are refused
  again.
The proxy and the echo server are this script's children, stopped by PID in every case.
"""
import os
import socket
import subprocess
import sys
import time

DELAY_US = 20000  # 20 ms each way: a round trip through the proxy takes >= 40 ms


def refused(port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        return True
    finally:
        s.close()
    return False


def wait_accepting(port, seconds=2.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            return s
        except ConnectionRefusedError:
            s.close()
            time.sleep(0.01)
    return None


def echo_server(port):
    """A child process: echoes every connection's bytes (one thread each) until killed."""
    pid = os.fork()
    if pid:
        return pid
    try:
        import threading

        def serve(c):
            while True:
                b = c.recv(4096)
                if not b:
                    return
                c.sendall(b)

        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(8)
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    finally:
        os._exit(1)


def stop(pid):
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def main():
    proxy_bin, base = sys.argv[1], int(sys.argv[2])
    listen, target = base, base + 1
    proxy = subprocess.Popen([proxy_bin, "--delay-us", str(DELAY_US), f"{listen}:{target}"])
    echo = None
    try:
        time.sleep(0.1)
        if proxy.poll() is not None:
            sys.exit(f"FAIL: the proxy exited ({proxy.returncode})")
        if not refused(listen):
            sys.exit("FAIL: the proxy accepted a connection while its target was down")
        echo = echo_server(target)
        s = wait_accepting(listen)
        if s is None:
            sys.exit("FAIL: the proxy did not accept within 2 s of its target listening")
        s.settimeout(5)
        t0 = time.monotonic()
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            b = s.recv(16)
            if not b:
                sys.exit("FAIL: the proxied connection ended before the echo")
            got += b
        rtt = time.monotonic() - t0
        if got != b"ping":
            sys.exit(f"FAIL: echoed {got!r}")
        if rtt < 2 * DELAY_US / 1e6:
            sys.exit(f"FAIL: round trip {rtt * 1e3:.1f} ms, under twice the delay")
        # The target dies: the proxied connection ends, and new connections are refused again.
        stop(echo)
        echo = None
        s.settimeout(5)
        try:
            eof = s.recv(16) == b""
        except ConnectionResetError:
            eof = True
        if not eof:
            sys.exit("FAIL: the proxied connection did not end when the target died")
        s.close()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not refused(listen):
            time.sleep(0.01)
        if not refused(listen):
            sys.exit("FAIL: still accepting 2 s after the target died")
        print(f"ok: refused while down, round trip {rtt * 1e3:.1f} ms through the proxy, "
              "refused again after the target died")
    finally:
        if echo:
            stop(echo)
        proxy.kill()
        proxy.wait()


if __name__ == "__main__":
    main()
