from rapport.core.errors import Conflict, NotFound


class CompanyNotFound(NotFound):
    code = "company_not_found"
    message = "Company not found."


class CompanyDomainTaken(Conflict):
    code = "company_domain_taken"
    message = "A company with this domain already exists in the workspace."
