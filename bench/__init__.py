"""The side-by-side benchmark: waylay against mitmdump and against no proxy at all (issue 8).

``bench/run.py`` is the command (``make bench``); the modules here are its parts, one concept
each: what to install (``deps``), the machine (``machine``), readings from ``/proc``
(``procstat``), launched processes (``process``), the nginx origin (``origin``) and its
certificates (``pki``), the three ways to reach it (``ways``), the load clients (``wrk``,
``curl``, ``idle``, ``https`` for one HTTPS exchange, ``tlsload`` for HTTPS load), S8's flow
database (``flowdb``), the scenarios (``scenarios/``; ``addons/`` holds the script S9's
proxies load), the targets of the issue (``targets``), the table and the JSON (``report``),
py-spy profiles (``profile``) and the command line that ties them (``cli``).
"""
