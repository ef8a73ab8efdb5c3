from rapport.core.errors import Conflict, NotFound, ValidationFailed


class ContactNotFound(NotFound):
    code = "contact_not_found"
    message = "Contact not found."


class ContactEmailTaken(Conflict):
    code = "contact_email_taken"
    message = "A contact with this email already exists in the workspace."


class ContactMerged(Conflict):
    code = "contact_merged"
    message = "This contact was merged into another one and cannot be restored."


class ContactNeedsName(ValidationFailed):
    code = "contact_needs_name"
    message = "A contact needs a first name, a last name or an email."


class LinkNotFound(NotFound):
    code = "link_not_found"
    message = "The contact is not linked to this company."


class InvalidMerge(ValidationFailed):
    code = "invalid_merge"
    message = "The merge request is not valid."


class InvalidDuplicatesCursor(ValidationFailed):
    code = "invalid_cursor"
    message = "The cursor is not valid for this list."
