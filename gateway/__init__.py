"""The S3 gateway: a stateless ASGI app that fans requests out to volume servers."""
