"""Per-user notifications, made from domain events by a durable subscriber of the outbox."""
