"""S3 errors as values: one table of codes, rendered once as XML by the app.

Only deliberate errors show their own code; anything unexpected becomes InternalError
and lost quorums become 503 (ServiceUnavailable / SlowDown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# code -> (HTTP status, default message), following the AWS S3 error code list
# (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
ERROR_TABLE: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AccessControlListNotSupported": (400, "The bucket does not allow ACLs"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadRequest": (400, "Bad Request"),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket succeeded "
                                     "and you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "ConditionalRequestConflict": (409, "The conditional request cannot succeed due to a "
                                        "conflicting operation against this resource."),
    "CORSResponse": (403, "This CORS request is not allowed."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object "
                            "size."),
    "ExpiredToken": (400, "The provided token has expired."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the "
                            "Content-Length HTTP header."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The AWS access key Id you provided does not exist in our "
                                "records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketAclWithObjectOwnership": (400, "Bucket cannot have ACLs set with "
                                                 "ObjectOwnership's BucketOwnerEnforced "
                                                 "setting"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found. The part may "
                         "not have been uploaded, or the specified entity tag may not match the "
                         "part's entity tag."),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable"),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order. Parts must be "
                              "ordered by part number."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist"),
    "NoSuchTagSet": (404, "The TagSet does not exist"),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedACLError": (400, "The XML you provided was not well-formed or did not "
                               "validate against our published schema."),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate "
                          "against our published schema."),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingSecurityHeader": (400, "Your request is missing a required header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "NoSuchUpload": (404, "The specified multipart upload does not exist. The upload ID might "
                          "be invalid, or the multipart upload might have been aborted or "
                          "completed."),
    "NotImplemented": (501, "A header you provided implies functionality that is not "
                            "implemented"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current "
                                  "time is too large."),
    "RequestTimeout": (400, "Your socket connection to the server was not read from or written "
                            "to within the timeout period."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the "
                                   "signature you provided. Check your key and signing method."),
    "SlowDown": (503, "Please reduce your request rate."),
    "UnresolvableGrantByEmailAddress": (400, "The email address you provided does not match "
                                             "any account on record."),
    "TooManyParts": (400, "You have attempted to upload more than 10,000 parts."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not "
                                       "match what was computed."),
    "InvalidObjectState": (403, "The operation is not valid for the current state of the "
                                "object."),
    "UnexpectedContent": (400, "This request does not support content"),
    "MissingRequestBodyError": (400, "Request Body is empty"),
}


@dataclass
class S3Error(Exception):
    """A deliberate S3 error. `extra` adds elements to the XML body (e.g. BucketName)."""

    code: str
    message: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in ERROR_TABLE:
            raise ValueError(f"unknown S3 error code {self.code!r}")
        if not self.message:
            self.message = ERROR_TABLE[self.code][1]
        super().__init__(f"{self.code}: {self.message}")

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code][0]


class KeyBusy(S3Error):
    """A write of the key is still going out (its version on some volumes, undecided with
    others down): a retryable 503 for a reader; a conditional write, which would have to
    wait for it, answers 409 ConditionalRequestConflict instead."""


def key_busy() -> KeyBusy:
    return KeyBusy("ServiceUnavailable", "A write of this key is still in progress.")


def quorum_lost(detail: str = "") -> S3Error:
    """Too few volumes answered: a retryable 503 rather than a wrong answer."""
    return S3Error("ServiceUnavailable", detail or "Not enough storage volumes are reachable.")
