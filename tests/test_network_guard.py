import socket

import pytest


def test_the_guard_refuses_a_connection_beyond_loopback():
    with socket.socket() as sock, pytest.raises(AssertionError, match=r"may only use 127\.0\.0\.1"):
        sock.connect(("192.0.2.1", 443))  # TEST-NET-1; refused by the guard before any packet leaves


def test_the_guard_lets_loopback_through():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
