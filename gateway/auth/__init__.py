"""Request authentication: SigV4 headers, presigned URLs and aws-chunked bodies."""

from gateway.auth.canonical import headers_from_asgi
from gateway.auth.context import AuthContext
from gateway.auth.payload import body_reader
from gateway.auth.sigv4 import authenticate
from gateway.auth.streaming import AwsChunkedReader, stored_content_encoding

__all__ = ["AuthContext", "AwsChunkedReader", "authenticate", "body_reader",
           "headers_from_asgi", "stored_content_encoding"]
