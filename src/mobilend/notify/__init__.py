"""Notifications: a transactional outbox and borrower-facing templates (zh-CN and en)."""
