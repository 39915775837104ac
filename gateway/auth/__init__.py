"""Request authentication: SigV4 headers, presigned URLs and aws-chunked bodies."""
