"""End-to-end tests: real clients, through a real ``waylay dump`` process, to origins on loopback.

Nothing here imports waylay: the proxy is a subprocess and the origins are built on h11 or on
raw sockets, so a bug in waylay's own parser cannot hide itself by agreeing with its tests.
"""
