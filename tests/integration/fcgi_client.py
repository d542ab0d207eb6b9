"""A minimal FastCGI client (responder role), enough to talk to coupon-fcgi directly on
its socket without a web server: one request per connection (request), or connections
kept open between requests as nginx keeps them (KeptConnection)."""

import socket
import struct

FCGI_VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1


def _record(rtype, request_id, content):
    out = b""
    # Records carry at most 65535 bytes; split longer content.
    for i in range(0, max(len(content), 1), 65535):
        chunk = content[i:i + 65535]
        out += struct.pack("!BBHHBx", FCGI_VERSION, rtype, request_id, len(chunk), 0) + chunk
    return out


def _nv(name, value):
    def length(n):
        return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


FCGI_KEEP_CONN = 1


def _params(method, uri, body, content_type, headers, extra=None):
    path, _, query = uri.partition("?")
    params = {
        "REQUEST_METHOD": method, "REQUEST_URI": uri, "SCRIPT_NAME": path,
        "DOCUMENT_URI": path, "QUERY_STRING": query, "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "test",
        "SERVER_PORT": "80", "CONTENT_LENGTH": str(len(body)),
    }
    if content_type:
        params["CONTENT_TYPE"] = content_type
    for k, v in (headers or {}).items():
        if k.lower() not in ("content-type", "content-length"):
            params["HTTP_" + k.upper().replace("-", "_")] = v
    params.update(extra or {})
    return params


def _exchange(s, params, body, flags):
    """One request on the connected socket S; returns the raw STDOUT of its answer and
    whether END_REQUEST ended it (False: the application closed the connection first)."""
    payload = _record(BEGIN_REQUEST, 1, struct.pack("!HB5x", RESPONDER, flags))
    payload += _record(PARAMS, 1, b"".join(_nv(k, v) for k, v in params.items()))
    payload += _record(PARAMS, 1, b"")
    if body:
        payload += _record(STDIN, 1, body)
    payload += _record(STDIN, 1, b"")
    s.sendall(payload)
    data = b""
    stdout = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return stdout, False
        data += chunk
        while len(data) >= 8:
            _, rtype, _, clen, plen = struct.unpack("!BBHHB", data[:7])
            if len(data) < 8 + clen + plen:
                break
            content = data[8:8 + clen]
            data = data[8 + clen + plen:]
            if rtype == STDOUT:
                stdout += content
            elif rtype == END_REQUEST:
                return stdout, True


def _parse(stdout):
    head, _, resp_body = stdout.partition(b"\r\n\r\n")
    headers = {}
    status = 200
    for line in head.decode("latin-1").split("\r\n"):
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        k, v = k.strip().lower(), v.strip()
        if k == "status":
            status = int(v.split()[0])
        else:
            headers[k] = v
    return status, headers, resp_body


def request(socket_path, method, uri, body=b"", content_type="application/json", timeout=10,
            headers=None, params=None):
    """Sends one request; returns (status, headers dict lower-case, body bytes). HEADERS
    (dict) go as CGI HTTP_* parameters, the way a web server passes request headers
    (Content-Type and Content-Length are CONTENT_TYPE / CONTENT_LENGTH instead); PARAMS
    (dict) are further parameters as the web server itself sets them."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(socket_path)
        stdout, _ = _exchange(s, _params(method, uri, body, content_type, headers, params),
                              body, 0)
    finally:
        s.close()
    return _parse(stdout)


class KeptConnection:
    """A connection the way nginx keeps one (fastcgi_keep_conn): every request carries
    FCGI_KEEP_CONN, so the application leaves the connection open after answering and
    the next request goes on the same one."""

    def __init__(self, socket_path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(socket_path)

    def request(self, method, uri, body=b"", content_type="application/json", headers=None):
        params = _params(method, uri, body, content_type, headers)
        stdout, ended = _exchange(self.sock, params, body, FCGI_KEEP_CONN)
        if not ended:
            raise ConnectionError("the application closed a kept connection before END_REQUEST")
        return _parse(stdout)

    def close(self):
        self.sock.close()
