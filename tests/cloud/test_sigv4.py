"""nself's SigV4 signer against AWS's own test suite (tests/data/specs/aws/sigv4-test-suite,
botocore's copy) and against botocore's signer on EC2-shaped requests."""
import calendar
import time

import pytest
import requests

from conftest import SPECS
from nself.providers.signers import SigV4Signer

SUITE = SPECS / "aws" / "sigv4-test-suite"
# The suite's documented example credentials (botocore tests/unit/auth/test_sigv4.py).
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"   # get-vanilla-with-session-token
VECTORS = sorted(p.parent for p in SUITE.rglob("*.req"))


def parse(req: str) -> tuple[str, str, dict[str, str], bytes]:
    """A .req file: request line, `Name:value` headers, a blank line, the body."""
    head, _, body = req.partition("\n\n")
    line, *fields = head.split("\n")
    method, target, _ = line.split(" ")
    headers = dict(field.split(":", 1) for field in fields)
    return method, "https://" + headers["Host"] + target, headers, body.encode()


@pytest.mark.parametrize("vector", VECTORS, ids=lambda p: p.name)
def test_the_aws_test_suite(vector):
    read = {suffix: (vector / f"{vector.name}.{suffix}").read_text() for suffix in ("req", "creq", "sts", "authz")}
    method, url, headers, body = parse(read["req"])
    if vector.name == "get-vanilla-with-session-token":
        headers["X-Amz-Security-Token"] = TOKEN       # signed, as the .creq shows
    signer = SigV4Signer(KEY, SECRET, "us-east-1", "service")
    canonical, _ = signer.canonical_request(method, url, headers, body)
    assert canonical == read["creq"]
    assert signer.string_to_sign(headers["X-Amz-Date"], canonical) == read["sts"]
    assert signer.authorization(method, url, headers, body) == read["authz"]


def test_a_prepared_request_is_signed_as_the_suite_says():
    vector = SUITE / "get-vanilla-with-session-token"
    when = calendar.timegm(time.strptime("20150830T123600Z", "%Y%m%dT%H%M%SZ"))
    signer = SigV4Signer(KEY, SECRET, "us-east-1", "service", token=TOKEN, clock=lambda: when)
    prepared = signer(requests.Request("GET", "https://example.amazonaws.com/").prepare())
    assert prepared.headers["Authorization"] == (vector / f"{vector.name}.authz").read_text()
    assert prepared.headers["X-Amz-Security-Token"] == TOKEN


@pytest.mark.parametrize("url,body,token,region", [
    ("https://ec2.eu-central-1.amazonaws.com/", "Action=DescribeRegions&Version=2016-11-15", None, "eu-central-1"),
    ("https://ec2.us-east-1.amazonaws.com/", "Action=RunInstances&Version=2016-11-15&ImageId=ami-1&MinCount=1"
     "&MaxCount=1&UserData=I2Nsb3VkLWNvbmZpZwo%3D&TagSpecification.1.Tag.1.Value=web+1", "session/token+=",
     "us-east-1"),
    ("http://127.0.0.1:8080/?Action=DescribeInstances&Filter.1.Name=tag%3Aname&Filter.1.Value.1=a%20b", "", None,
     "ap-south-1"),
])
def test_the_same_signature_as_botocore(url, body, token, region):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"} if body else {}
    theirs = AWSRequest("POST" if body else "GET", url, data=body.encode(), headers=dict(headers))
    SigV4Auth(Credentials(KEY, SECRET, token), "ec2", region).add_auth(theirs)
    stamp = theirs.headers["X-Amz-Date"]
    when = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    ours = SigV4Signer(KEY, SECRET, region, "ec2", token=token, clock=lambda: when)(
        requests.Request("POST" if body else "GET", url, data=body.encode() or None, headers=headers).prepare())
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
    assert ours.headers.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")
