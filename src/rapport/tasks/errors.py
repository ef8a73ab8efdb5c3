from rapport.core.errors import NotFound


class TaskNotFound(NotFound):
    code = "task_not_found"
    message = "Task not found."
