"""The audit log: who pushed, deleted, logged in or collected garbage, and when.

Records are JSON objects (``time``, ``action``, ``actor``, ``repository``, ``tag``, ``digest``,
``client``, ``requestId`` and what the action adds), written as JSON lines files under the
store's ``_dockyard/audit/<YYYY-MM-DD>/`` through the storage driver, group-committed like the
webhook queue. A change's record is durable before the request that made it is answered; login
records go with the next write without holding the answer (a failed login must not cost the
server a disk flush each), and a successful login is recorded once per account and address an
hour (htpasswd clients log in with every request). Whole days older than ``audit.retention``
are deleted. Names of accounts are recorded, never a password or token.
"""
