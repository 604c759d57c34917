"""The platform console's additions (issue 16): dashboard, settings, mail outbox, clients and accounts."""
