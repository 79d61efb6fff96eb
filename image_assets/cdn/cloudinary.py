"""The `cloudinary` CDN backend, through the official SDK.

Uploads use ``folder=kits/{manufacturer}``, ``public_id`` from the product id,
``resource_type="image"`` and the sha256 of the bytes in the asset's context.
``overwrite`` and ``invalidate`` are the caller's: a replacement purges the
CDN's cached copies, a first upload has nothing to purge, and an upload whose
target state is unknown goes with ``overwrite=false`` so it can never replace
what it has not seen. What the account holds is read in bulk
(:meth:`CloudinaryCdn.inventory`: one Admin API call per 500 assets), never
one call per image: the Admin API is limited per hour. Delivery URLs
(``f_auto,q_auto``, sizes and crops) are built by the SDK.

Transient failures (rate limits, 5xx, network) are retried through the shared
retry helper, honouring the server's wait: ``Retry-After`` on a 429, the
``X-FeatureRateLimit-Reset`` time on the Admin API's 420. A wait longer than
``max_wait`` is not shortened: the call fails at once (the image goes to the
fallback, a listing becomes "unknown"). After a network failure (a timeout,
say) the asset is looked up before uploading again, so a slow success is never
uploaded twice. Error messages are scrubbed of credentials.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import cloudinary.api
import cloudinary.api_client.call_api
import cloudinary.uploader
import cloudinary.utils
from cloudinary import exceptions as cx
from urllib3.exceptions import HTTPError as Urllib3Error

from image_assets.cdn.base import CdnError, DeleteReport
from image_assets.cdn.credentials import CloudinaryCredentials
from image_assets.failures import FailureKind
from image_assets.formats import extension, image_format
from image_assets.layout import sanitize_id, split_public_id
from image_assets.records import CdnAsset
from image_assets.retry import (
    Backoff,
    RetriesExhausted,
    Transient,
    call_with_retries,
    retry_after_seconds,
    seconds_until,
)
from image_assets.storage.base import validate_key

log = logging.getLogger(__name__)
T = TypeVar("T")
LIST_PAGE = 500  # the Admin API's largest page
DELETE_BATCH = 100  # public ids per Admin API delete


def classify(exc: BaseException) -> FailureKind:
    """The failure kind of an SDK exception, by type (never by message text).

    The SDK maps HTTP statuses to exception classes (420/429 ``RateLimited``,
    500/503 ``GeneralError``, 401 ``AuthorizationRequired``); network errors
    and unparsable answers (a proxy's error page) come as a plain ``Error``
    raised while handling the original exception, which stays in
    ``__context__``.
    """
    if isinstance(exc, cx.AuthorizationRequired):
        return FailureKind.CDN_AUTH
    if isinstance(exc, cx.RateLimited | cx.GeneralError):
        return FailureKind.CDN_TRANSIENT
    if is_network_error(exc) or isinstance(exc.__context__, ValueError):
        return FailureKind.CDN_TRANSIENT
    return FailureKind.CDN_REJECTED


def is_network_error(exc: BaseException) -> bool:
    """Whether the request may have reached Cloudinary without an answer coming back."""
    return isinstance(exc.__context__, Urllib3Error | OSError)  # socket.timeout is an OSError


def split_folder(public_id: str) -> tuple[str | None, str]:
    """``kits/estes/est0001/2`` -> (``kits/estes``, ``est0001/2``)."""
    return split_public_id(validate_key(public_id))


# ------------------------------------------------------------ the answer's headers


class _LastAnswer(threading.local):
    status: int | None = None
    headers: Mapping[str, str] = {}


_last_answer = _LastAnswer()
_install_lock = threading.Lock()


class _AnswerKeepingPool:
    """The SDK's urllib3 pool, keeping the status and headers of this thread's last answer.

    The SDK turns an error answer into an exception carrying only its message,
    so the wait a rate-limited answer asks for (``Retry-After``,
    ``X-FeatureRateLimit-Reset``) would be lost; this keeps it readable.
    """

    def __init__(self, pool: Any):
        self._pool = pool

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _last_answer.status, _last_answer.headers = None, {}
        response = self._pool.request(*args, **kwargs)
        _last_answer.status = response.status
        _last_answer.headers = {k.lower(): v for k, v in response.headers.items()}
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def _keep_answers() -> None:
    """Wrap the SDK's two connection pools (Upload API and Admin API) once."""
    with _install_lock:
        for module in (cloudinary.uploader, cloudinary.api_client.call_api):
            pool = getattr(module, "_http", None)
            if pool is not None and not isinstance(pool, _AnswerKeepingPool):
                module._http = _AnswerKeepingPool(pool)


def requested_wait(now: float | None = None) -> float | None:
    """Seconds the last answer on this thread asked us to wait, if it said."""
    headers = _last_answer.headers
    if _last_answer.status not in (420, 429):
        return None
    wait = retry_after_seconds(headers.get("retry-after"), now)
    if wait is None:
        wait = seconds_until(headers.get("x-featureratelimit-reset"), now)
    return wait


# ------------------------------------------------------------------- the backend


class CloudinaryCdn:
    storage = "cloudinary"
    transforms_on_delivery = True

    def __init__(
        self,
        credentials: CloudinaryCredentials,
        *,
        upload_prefix: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.credentials = credentials
        self.upload_prefix = upload_prefix
        self.timeout = timeout
        self.backoff = Backoff(max_retries=max_retries, base=backoff, maximum=max_wait)
        self._sleep = sleep
        _keep_answers()

    def __repr__(self) -> str:
        return f"CloudinaryCdn(cloud_name={self.credentials.cloud_name!r})"

    @property
    def ledger_name(self) -> str:
        """Whose ledger this is: one per account (cloud name)."""
        return f"cloudinary/{sanitize_id(self.credentials.cloud_name)}"

    def _options(self) -> dict[str, Any]:
        creds = self.credentials
        options = {
            "cloud_name": creds.cloud_name,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret.get_secret_value(),
            "signature_algorithm": creds.signature_algorithm,
            "timeout": self.timeout,
        }
        if self.upload_prefix:
            options["upload_prefix"] = self.upload_prefix
        return options

    def _error(self, action: str, exc: BaseException, kind: FailureKind | None = None) -> CdnError:
        message = self.credentials.scrub(f"{type(exc).__name__}: {exc}")
        return CdnError(f"Cloudinary {action} failed: {message}", kind or classify(exc))

    def _transient(self, action: str, exc: cx.Error) -> Transient:
        """A retryable SDK error, carrying the wait the answer asked for."""
        error = self._error(action, exc)
        return Transient(error.args[0], error.kind, wait=requested_wait())

    def _call(self, action: str, call: Callable[[], T]) -> T:
        """One SDK call with retries for transient failures (and their waits honoured)."""

        def attempt(number: int) -> T:
            try:
                return call()
            except cx.Error as exc:
                if classify(exc) != FailureKind.CDN_TRANSIENT:
                    raise self._error(action, exc) from None
                raise self._transient(action, exc) from None

        def on_retry(error: Transient, number: int, delay: float) -> None:
            log.info("Cloudinary %s: %s; retrying in %.1fs", action, error, delay)

        try:
            return call_with_retries(attempt, self.backoff, sleep=self._sleep, on_retry=on_retry)
        except RetriesExhausted as exc:
            raise CdnError(str(exc), exc.last.kind) from None

    def upload(
        self,
        data: bytes,
        public_id: str,
        *,
        format: str,
        sha256: str,
        width: int | None = None,
        height: int | None = None,
        overwrite: bool = True,
        invalidate: bool = False,
    ) -> CdnAsset:
        """Store ``data`` under ``public_id``. With ``overwrite=False`` an existing asset is
        kept and returned as it is (its ``sha256`` is then what its context says, if anything)."""
        folder, name = split_folder(public_id)
        previous_network_error = False

        def attempt(number: int) -> CdnAsset:
            nonlocal previous_network_error
            if previous_network_error:  # a slow upload may still succeed: do not send it twice
                landed = self._landed(public_id, sha256)
                if landed is not None:
                    return landed
            try:
                result = cloudinary.uploader.upload(
                    io.BytesIO(data),
                    filename=f"{name.rsplit('/', 1)[-1]}.{extension(format)}",
                    folder=folder,
                    public_id=name,
                    use_asset_folder_as_public_id_prefix=True,
                    overwrite=overwrite,
                    invalidate=invalidate,
                    resource_type="image",
                    context={"sha256": sha256},
                    **self._options(),
                )
            except cx.Error as exc:
                kind = classify(exc)
                if kind != FailureKind.CDN_TRANSIENT:
                    raise self._error("upload", exc, kind) from None
                previous_network_error = is_network_error(exc)
                raise self._transient("upload", exc) from None
            if result.get("existing"):
                return self._asset(result, _context_sha256(result))
            return self._asset(result, sha256)

        def on_retry(error: Transient, number: int, delay: float) -> None:
            log.info("Cloudinary upload of %s: %s; retrying in %.1fs", public_id, error, delay)

        try:
            return call_with_retries(attempt, self.backoff, sleep=self._sleep, on_retry=on_retry)
        except RetriesExhausted as exc:
            raise CdnError(str(exc), exc.last.kind) from None

    def _landed(self, public_id: str, sha256: str) -> CdnAsset | None:
        """After a network failure, watch for the slow upload for up to twice the timeout,
        so it is not sent a second time while the first is still being stored."""
        deadline = time.monotonic() + 2 * self.timeout
        while True:
            try:
                held = self.lookup(public_id)
            except CdnError:
                held = None
            if held is not None and held.sha256 == sha256:
                return held
            if time.monotonic() >= deadline:
                return None
            self._sleep(min(self.timeout / 4, max(0.0, deadline - time.monotonic())))

    def _asset(self, result: Mapping[str, Any], sha256: str) -> CdnAsset:
        return CdnAsset(
            public_id=result["public_id"],
            storage="cloudinary",
            url=result.get("url") or result["secure_url"],
            secure_url=result["secure_url"],
            version=result.get("version"),
            bytes=int(result.get("bytes", 0)),
            width=result.get("width"),
            height=result.get("height"),
            format=result.get("format", ""),
            sha256=sha256,
            etag=result.get("etag"),
        )

    def lookup(self, public_id: str, format: str | None = None) -> CdnAsset | None:
        """One asset (one Admin API call, no retries): for rare checks, never per image."""
        try:
            result = cloudinary.api.resource(public_id, context=True, **self._options())
        except cx.NotFound:
            return None
        except Exception as exc:
            raise self._error("lookup", exc) from None
        return self._asset(result, _context_sha256(result))

    def inventory(self, prefix: str) -> dict[str, CdnAsset]:
        """Every asset whose public id starts with ``prefix``, by public id: one Admin API
        call per 500 assets. Raises :class:`CdnError` when the account cannot be listed
        (the caller then knows nothing, which is not the same as "nothing is there")."""
        found: dict[str, CdnAsset] = {}
        cursor: str | None = None
        while True:
            page = self._call("listing", partial(self._list_page, prefix, cursor))
            for result in page.get("resources", []):
                found[result["public_id"]] = self._asset(result, _context_sha256(result))
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def _list_page(self, prefix: str, cursor: str | None) -> Mapping[str, Any]:
        return cloudinary.api.resources(
            type="upload",
            prefix=prefix,
            max_results=LIST_PAGE,
            context=True,
            next_cursor=cursor,
            **self._options(),
        )

    def delete(self, public_id: str) -> bool:
        try:
            result = cloudinary.uploader.destroy(
                public_id, invalidate=True, resource_type="image", **self._options()
            )
        except Exception as exc:
            raise self._error("delete", exc) from None
        return result.get("result") == "ok"

    def delete_many(self, assets: Sequence[CdnAsset]) -> DeleteReport:
        """The Admin API's ``DELETE resources/image/upload``, 100 public ids a call, with
        ``invalidate`` (cached copies purged). Every call counts against the hourly
        Admin API limit: when the limit's wait is longer than ``max_wait`` the rest is
        left for the next run (``stopped``), never hammered."""
        report = DeleteReport()
        ids = [asset.public_id for asset in assets]
        for start in range(0, len(ids), DELETE_BATCH):
            batch = ids[start : start + DELETE_BATCH]
            try:
                answer = self._call("delete", partial(self._delete_batch, batch))
            except CdnError as exc:
                report.stopped = str(exc)
                break
            finally:
                report.calls += 1
            outcome = answer.get("deleted") or {}
            for public_id in batch:
                result = outcome.get(public_id)
                if result in ("deleted", "not_found"):
                    report.deleted.append(public_id)
                else:
                    report.failed[public_id] = f"Cloudinary answered {result!r}"
        return report

    def _delete_batch(self, public_ids: list[str]) -> Mapping[str, Any]:
        return cloudinary.api.delete_resources(
            public_ids, resource_type="image", type="upload", invalidate=True, **self._options()
        )

    def delivery_url(
        self,
        public_id: str,
        *,
        width: int | None = None,
        height: int | None = None,
        crop: str | None = None,
        format: str = "auto",
        quality: str = "auto",
        version: int | None = None,
    ) -> str:
        """A transformation URL built by the SDK, e.g. ``.../f_auto,q_auto,w_300,h_300,c_fill/...``.

        ``version`` is not written: published catalogues carry the SDK's default ``v1``
        form, and ``invalidate`` purges replaced assets."""
        options = transformation_options(
            width=width, height=height, crop=crop, format=format, quality=quality
        )
        url, _ = cloudinary.utils.cloudinary_url(
            public_id, cloud_name=self.credentials.cloud_name, secure=True, **options
        )
        return url

    def usage(self) -> dict:
        """The account's usage report (Admin API)."""
        try:
            return dict(cloudinary.api.usage(**self._options()))
        except Exception as exc:
            raise self._error("usage", exc) from None


def transformation_options(
    *,
    width: int | None,
    height: int | None,
    crop: str | None,
    format: str,
    quality: str,
) -> dict[str, Any]:
    """The SDK's options for one delivery transformation (``jpeg`` spelt ``jpg``); shared
    by every backend whose URLs the SDK builds (Cloudinary, the image service)."""
    options: dict[str, Any] = {
        "fetch_format": format if format == "auto" else image_format(format).cloudinary_name,
        "quality": quality,
    }
    if width:
        options["width"] = width
    if height:
        options["height"] = height
    if crop:
        options["crop"] = crop
    return options


def _context_sha256(result: Mapping[str, Any]) -> str:
    """The sha256 an asset's context records ("" when it has none)."""
    custom = (result.get("context") or {}).get("custom") or {}
    return str(custom.get("sha256", ""))


QUOTA_KEYS = ("storage", "bandwidth", "transformations", "credits")


def quota_percentages(usage: dict) -> dict[str, float]:
    """Used share (0-100) of each plan limit in a usage report, for both report shapes:
    per-item ``used_percent``/``limit``, or credit-based plans where items report
    ``credits_usage`` against the ``credits`` limit."""
    credit_limit = (usage.get("credits") or {}).get("limit")
    out: dict[str, float] = {}
    for key in QUOTA_KEYS:
        item = usage.get(key) or {}
        if not isinstance(item, dict):
            continue
        if item.get("used_percent") is not None:
            out[key] = float(item["used_percent"])
        elif item.get("limit"):
            out[key] = 100.0 * float(item.get("usage", 0)) / float(item["limit"])
        elif credit_limit and item.get("credits_usage") is not None:
            out[key] = 100.0 * float(item["credits_usage"]) / float(credit_limit)
    return {k: round(v, 2) for k, v in out.items()}
