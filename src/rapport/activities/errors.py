from rapport.core.errors import NotFound


class ActivityNotFound(NotFound):
    code = "activity_not_found"
    message = "Activity not found."


class TimelineRecordNotFound(NotFound):
    """The record whose timeline was asked for is not in the caller's workspace; the code names
    the record's own resource (`contact_not_found`, `lead_not_found`, ...)."""

    def __init__(self, resource: str) -> None:
        label = resource.replace("_", " ").capitalize()
        super().__init__(f"{label} not found.", code=f"{resource}_not_found")
