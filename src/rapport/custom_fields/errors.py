from rapport.core.errors import Conflict, NotFound, ValidationFailed


class CustomFieldNotFound(NotFound):
    code = "custom_field_not_found"
    message = "Custom field not found."


class CustomFieldNameTaken(Conflict):
    code = "custom_field_name_taken"
    message = "This resource already has a custom field with this name."


class InvalidCustomFields(ValidationFailed):
    code = "invalid_custom_fields"
    message = "Some custom field values are not valid."
