from rapport.core.errors import Conflict, NotFound


class TagNotFound(NotFound):
    code = "tag_not_found"
    message = "Tag not found."


class TagNameTaken(Conflict):
    code = "tag_name_taken"
    message = "A tag with this name already exists in the workspace."
