from rapport.core.errors import NotFound, ValidationFailed


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    message = "Webhook endpoint not found."


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    message = "Webhook delivery not found."


class WebhookUrlRefused(ValidationFailed):
    """422 with the refusal's own code: webhook_url_invalid, webhook_url_insecure,
    webhook_url_private or webhook_url_unresolvable."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(
            "This URL cannot receive webhooks.",
            code=code,
            details=[{"field": "body.url", "reason": reason}],
        )


class DisabledReasonWithoutDisabling(ValidationFailed):
    code = "disabled_reason_needs_disabled"
    message = "disabled_reason is only kept on a disabled endpoint (send enabled: false)."
