"""Notifications: the transactional outbox, its relay, channel adapters (SMS, push, e-mail)
and borrower-facing templates (zh-CN and en). See docs/notifications.md."""
