"""Finding 2: a large body without a token (denial of service before authentication).

The attack: a 200 MB JSON body with no token made the server read and parse it all before
answering 401, grew its memory by more than a gigabyte and stalled ``/healthz``. Now a declared
length over the cap is refused before a byte is read, a body without a declared length is cut
off at the cap, and a body is only read once its token is known.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import psutil

from .conftest import Site

HUGE = 200 * 1024 * 1024


def _raw(site: Site, head: str, body_chunks: list[bytes], read_timeout_s: float = 30.0) -> bytes:
    """Send a request by hand (so the test decides what the body is) and read the answer."""
    parts = urlsplit(site.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=read_timeout_s) as s:
        s.sendall(head.encode())
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without reading the rest: what we want
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or len(answer) < 2000:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def test_a_declared_200_mb_body_is_refused_before_it_is_read(site: Site) -> None:
    rss_before = psutil.Process().memory_info().rss
    head = (f"POST /api/v1/poles/dim HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {HUGE}\r\n\r\n")
    answer = _raw(site, head, [b"[" + b"1," * 32_768])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than 1,048,576 bytes" in answer
    # the server (in this process) did not take the body in
    assert psutil.Process().memory_info().rss - rss_before < 50 * 1024 * 1024
    assert site.client.get("/healthz").status_code == 200
    metrics = site.client.get("/metrics", headers=site.auth("viewer")).text
    assert "streetlight_api_body_too_large_total 1.0" in metrics


def test_a_chunked_body_is_cut_off_at_the_cap(site: Site) -> None:
    head = (f"POST /api/v1/poles/dim HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {site.tokens['operator']}\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"1," * 32_768  # 64 KiB
    chunks = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(64)]  # 4 MiB, more never read
    answer = _raw(site, head, [b"1\r\n[\r\n", *chunks, b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_body_without_a_valid_token_is_not_read(site: Site) -> None:
    # under the cap, but no token: 401 at once, the body is never parsed
    for auth in ("", "Authorization: Bearer sl_guess\r\n"):
        head = (f"POST /api/v1/poles/dim HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
                f"Content-Length: 1000000\r\n\r\n")
        answer = _raw(site, head, [b"{"])  # one byte of a million: a route that read it would wait
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_a_body_under_the_cap_still_works(site: Site) -> None:
    r = site.client.post("/api/v1/poles/dim", headers=site.auth("operator"), json={"poles": ["NH-001"], "level": 60})
    assert r.status_code == 202, r.text
    big = site.client.post("/api/v1/poles/dim", headers=site.auth("operator"),
                           json={"poles": ["NH-001"] * 50_000, "level": 60})  # about 500 kB
    assert big.status_code != 413
