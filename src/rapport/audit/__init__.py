"""The audit log and record histories, built from the domain events every service records."""
