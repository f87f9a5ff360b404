"""Notifications: distribution's webhook envelopes, delivered at least once from a durable queue.

- ``envelope``: an event as distribution's JSON (``events[]`` items), filters, the HMAC signature;
- ``spool``: the queue, files under the store's ``_dockyard/notifications/spool/`` written
  through the storage driver (durable with the filesystem driver's fsync), group-committed;
- ``subscriber``: the events' subscriber that queues each change and makes the request that caused
  it wait until its event is durable (``events.request.RequestInfo.pending``);
- ``deliver``: the sender, run by one process at a time (a coordinator lease), per endpoint in
  queue order with exponential backoff, progress and health kept in the store;
- ``lifespan``: starts and stops the sender with the worker.
"""
