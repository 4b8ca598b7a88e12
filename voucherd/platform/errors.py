"""Errors that map to the Voucherify ``Error`` object.

Each subclass fixes the HTTP ``code``, the machine ``key`` and a default
``message``; instances add ``details`` and, where a resource is named, its id
and type. The server renders them; domain code raises them.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VoucherdError(Exception):
    code: ClassVar[int] = 400
    key: ClassVar[str] = "invalid_payload"
    message: ClassVar[str] = "Invalid payload"
    registry: ClassVar[dict[str, type[VoucherdError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        VoucherdError.registry.setdefault(cls.key, cls)

    def __init__(
        self,
        details: str | None = None,
        *,
        message: str | None = None,
        resource_id: str | None = None,
        resource_type: str | None = None,
        error_message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(details or message or self.message)
        self.details = details
        self.instance_message = message
        self.resource_id = resource_id
        self.resource_type = resource_type
        self.error_message = error_message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "key": self.key,
            "message": self.instance_message or self.message,
            "details": self.details or self.instance_message or self.message,
            "request_id": request_id,
        }
        if self.resource_id is not None:
            body["resource_id"] = self.resource_id
        if self.resource_type is not None:
            body["resource_type"] = self.resource_type
        if self.error_message:
            body["error"] = {"message": self.error_message}
        return body


class InvalidPayload(VoucherdError):
    key = "invalid_payload"
    message = "Invalid payload"


class InvalidQueryParams(VoucherdError):
    key = "invalid_query_params"
    message = "Invalid query params"


class Unauthorized(VoucherdError):
    code = 401
    key = "unauthorized"
    message = "Unauthorized"


class Forbidden(VoucherdError):
    code = 403
    key = "forbidden"
    message = "Forbidden"


class NotFound(VoucherdError):
    code = 404
    key = "not_found"
    message = "Resource not found"

    @classmethod
    def of(cls, resource_type: str, resource_id: str) -> NotFound:
        return cls(
            f"Cannot find {resource_type} with id {resource_id}",
            resource_id=resource_id,
            resource_type=resource_type,
        )


class MethodNotAllowed(VoucherdError):
    code = 405
    key = "method_not_allowed"
    message = "HTTP Method Not Allowed"


class NotAcceptable(VoucherdError):
    code = 406
    key = "not_acceptable"
    message = "Not Acceptable"


class DuplicateFound(VoucherdError):
    code = 409
    key = "duplicate_found"
    message = "Duplicated resource found"


class PayloadTooLarge(VoucherdError):
    code = 413
    key = "query_too_large"
    message = "Request payload too large"


class UnsupportedMediaType(VoucherdError):
    code = 415
    key = "unsupported_media_type"
    message = "Unsupported Media Type"


class TooManyRequests(VoucherdError):
    code = 429
    key = "too_many_requests"
    message = "Too many requests hit the API too quickly."


class InternalError(VoucherdError):
    code = 500
    key = "internal_error"
    message = "Internal Server Error"


class ServiceUnavailable(VoucherdError):
    code = 503
    key = "service_unavailable"
    message = "Service Unavailable"


class DuplicatedRedeemables(VoucherdError):
    key = "duplicated_redeemables"
    message = "Duplicated redeemables"


class InvalidRedeemables(VoucherdError):
    key = "invalid_redeemables"
    message = "Invalid redeemables"


class MissingReward(VoucherdError):
    key = "missing_reward"
    message = "Missing reward"


class MetadataValidationFailed(VoucherdError):
    key = "metadata_validation_failed"
    message = "Metadata validation failed"


class InvalidValidationRules(VoucherdError):
    key = "invalid_validation_rules"
    message = "Invalid validation rules"


class StackingRulesExist(VoucherdError):
    code = 409
    key = "stacking_rules_exist"
    message = "Stacking rules already exist"


class InvalidCampaignParams(VoucherdError):
    key = "invalid_campaign_params"
    message = "Invalid campaign params"


class InvalidCampaign(VoucherdError):
    key = "invalid_campaign"
    message = "Invalid campaign"


class InvalidVoucher(VoucherdError):
    key = "invalid_voucher"
    message = "Invalid voucher"


class InvalidCodeConfig(VoucherdError):
    key = "invalid_code_config"
    message = "Invalid code config"


class InvalidExportParams(VoucherdError):
    key = "invalid_export_params"
    message = "Invalid export params"


class InvalidAddBalanceParams(VoucherdError):
    key = "invalid_add_balance_params"
    message = "Invalid add balance params"


class ResourceProtected(VoucherdError):
    key = "resource_protected"
    message = "Resource is protected"


class NoVoucherSuitableForPublication(VoucherdError):
    key = "no_voucher_suitable_for_publication"
    message = "Couldn't find any voucher suitable for publication."


class VoucherAlreadyPublished(VoucherdError):
    key = "voucher_already_published"
    message = "Voucher already published"


class TooManyVouchersRequested(VoucherdError):
    key = "too_many_vouchers_requested"
    message = "Too many vouchers requested"


class AlreadyRolledBack(VoucherdError):
    key = "already_rolled_back"
    message = "Redemption already rolled back"


class InvalidRedemption(VoucherdError):
    key = "invalid_redemption"
    message = "Invalid redemption"


class InvalidRedemptionParent(VoucherdError):
    key = "invalid_redemption_parent"
    message = "Invalid redemption parent"


class MultipleRequests(VoucherdError):
    code = 409
    key = "multiple_requests"
    message = "Multiple requests"


class IdempotencyKeyReused(VoucherdError):
    code = 409
    key = "idempotency_key_reused"
    message = "Idempotency key reused with a different request"


class PageOverLimit(VoucherdError):
    key = "page_over_limit"
    message = "Page over limit"
