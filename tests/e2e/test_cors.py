"""Bucket CORS through boto3 and plain HTTP: rules stored and read back, browser
preflights answered unsigned, CORS headers on answers (errors included), and rules set
through one gateway obeyed by another."""

from __future__ import annotations

import httpx
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e

RULES = {"CORSRules": [
    {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["https://*.example.org"],
     "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
    {"AllowedMethods": ["PUT"], "AllowedOrigins": ["https://upload.example.com"],
     "AllowedHeaders": ["content-type", "x-amz-*"]},
]}


def test_rules_round_trip(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert [r["AllowedOrigins"] for r in got] == [["https://*.example.org"],
                                                  ["https://upload.example.com"]]
    assert got[0]["ExposeHeaders"] == ["ETag"] and got[0]["MaxAgeSeconds"] == 600
    with pytest.raises(ClientError) as err:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
            {"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}]})
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_cors(Bucket=bucket)


def test_preflights_and_answers(cluster, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = f"{cluster.endpoint}/{bucket}/k"
    with httpx.Client(verify=False, timeout=10) as http:
        assert http.options(url).status_code == 400  # no Origin
        no_rules = http.options(url, headers={"Origin": "https://a.example.org",
                                              "Access-Control-Request-Method": "GET"})
        assert no_rules.status_code == 403 and b"CORSResponse" in no_rules.content
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
        ok = http.options(url, headers={"Origin": "https://a.example.org",
                                        "Access-Control-Request-Method": "GET"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://a.example.org"
        assert ok.headers["access-control-allow-methods"] == "GET, HEAD"
        assert ok.headers["access-control-max-age"] == "600"
        put = http.options(url, headers={
            "Origin": "https://upload.example.com", "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "Content-Type, X-Amz-Date"})
        assert put.status_code == 200
        assert put.headers["access-control-allow-headers"] == "content-type, x-amz-date"
        for origin, method, headers in (
                ("https://evil.example.com", "GET", ""),
                ("https://a.example.org", "DELETE", ""),
                ("https://upload.example.com", "PUT", "authorization-x")):
            refused = http.options(url, headers={
                "Origin": origin, "Access-Control-Request-Method": method,
                **({"Access-Control-Request-Headers": headers} if headers else {})})
            assert refused.status_code == 403
            assert "access-control-allow-origin" not in refused.headers
        # a real (unsigned, here refused) request from an allowed origin still carries
        # the headers a browser needs to show it the error
        denied = http.get(url, headers={"Origin": "https://a.example.org"})
        assert denied.status_code == 403
        assert denied.headers["access-control-allow-origin"] == "https://a.example.org"
        assert denied.headers["access-control-expose-headers"] == "ETag"
        other = http.get(url, headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers
    signed = s3.get_object(Bucket=bucket, Key="k")
    assert "access-control-allow-origin" not in signed["ResponseMetadata"]["HTTPHeaders"]


def test_rules_set_through_one_gateway_are_obeyed_by_another(cluster, s3, bucket):
    other = cluster.second_gateway()
    url = f"{other}/{bucket}/k"
    ask = {"Origin": "https://a.example.org", "Access-Control-Request-Method": "GET"}
    with httpx.Client(verify=False, timeout=10) as http:
        assert http.options(url, headers=ask).status_code == 403  # cached there: no rules
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
        assert http.options(url, headers=ask).status_code == 200
        s3.delete_bucket_cors(Bucket=bucket)
        assert http.options(url, headers=ask).status_code == 403
