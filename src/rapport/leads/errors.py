from rapport.core.errors import Conflict, NotFound, ValidationFailed


class LeadNotFound(NotFound):
    code = "lead_not_found"
    message = "Lead not found."


class LeadDuplicate(Conflict):
    code = "lead_duplicate"
    message = (
        "A lead with this email or phone already exists (send ?allow_duplicate=true to create "
        "it anyway)."
    )


class LeadAlreadyConverted(Conflict):
    code = "lead_already_converted"
    message = "This lead has already been converted."


class InvalidStatus(ValidationFailed):
    code = "invalid_status"
    message = "Unknown lead status for this workspace."


class InvalidStatusTransition(ValidationFailed):
    code = "invalid_status_transition"
    message = "The lead cannot move from its current status to this one."
