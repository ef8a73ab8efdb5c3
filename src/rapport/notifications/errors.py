from rapport.core.errors import NotFound


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    message = "Notification not found."
