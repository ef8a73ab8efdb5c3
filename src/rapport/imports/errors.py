from rapport.core.errors import Conflict, NotFound, ValidationFailed


class ImportNotFound(NotFound):
    code = "import_not_found"
    message = "Import not found."


class ExportNotFound(NotFound):
    code = "export_not_found"
    message = "Export not found."


class ExportNotReady(Conflict):
    code = "export_not_ready"
    message = "The export has not completed (see its status)."


class InvalidMapping(ValidationFailed):
    code = "invalid_mapping"
    message = "The column mapping does not fit the file or the resource."


class InvalidCsv(ValidationFailed):
    code = "invalid_csv"
    message = "The file cannot be read as CSV."
