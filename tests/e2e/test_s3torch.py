"""s3torchconnector (PyTorch's S3 client, on the AWS CRT) against a running cluster:
a state_dict saved with S3Checkpoint loads back equal, and an S3MapDataset reads every
small object under a prefix. Ranged reads with If-Match and multipart writes are what it
sends; both must be exact.

Optional: it runs where torch and s3torchconnector are installed (`pip install
torch==2.13.0 s3torchconnector`; several hundred MB), and is skipped elsewhere.
"""

from __future__ import annotations

import io
import os

import pytest

from tests.e2e.cluster import REGION
from tests.e2e.conftest import USERS

torch = pytest.importorskip("torch")
s3torch = pytest.importorskip("s3torchconnector")

pytestmark = pytest.mark.e2e


@pytest.fixture
def config(cluster, monkeypatch: pytest.MonkeyPatch):
    access, secret = USERS["alice"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    # Parts of 8 MiB (the connector's default): a 40 MiB checkpoint is a multipart upload.
    return s3torch.S3ClientConfig(force_path_style=True, part_size=8 << 20)


def test_a_checkpoint_saves_and_loads_back_equal(cluster, s3, bucket, config):
    checkpoint = s3torch.S3Checkpoint(region=REGION, endpoint=cluster.endpoint,
                                      s3client_config=config)
    generator = torch.Generator().manual_seed(7)
    state = {"embed.weight": torch.randn(2048, 4096, generator=generator),  # 32 MiB
             "head.bias": torch.randn(1000, generator=generator),
             "step": torch.tensor(1234)}
    uri = f"s3://{bucket}/ckpt/epoch-1.pt"
    with checkpoint.writer(uri) as writer:
        torch.save(state, writer)
    with checkpoint.reader(uri) as reader:
        loaded = torch.load(reader, weights_only=True)
    assert loaded.keys() == state.keys()
    for name, tensor in state.items():
        assert torch.equal(loaded[name], tensor), name
    # boto3 reads back the same checkpoint, written as a multipart upload of 8 MiB parts.
    head = s3.head_object(Bucket=bucket, Key="ckpt/epoch-1.pt")
    assert head["ETag"].strip('"').endswith(f"-{-(-head['ContentLength'] // (8 << 20))}")
    stored = s3.get_object(Bucket=bucket, Key="ckpt/epoch-1.pt")["Body"].read()
    loaded = torch.load(io.BytesIO(stored), weights_only=True)
    assert all(torch.equal(loaded[name], tensor) for name, tensor in state.items())


def test_a_map_dataset_reads_every_object_under_a_prefix(cluster, s3, bucket, config):
    bodies = {f"data/shard-{n:03d}.bin": os.urandom(1000 + 37 * n) for n in range(60)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key="other/x", Body=b"not under the prefix")
    dataset = s3torch.S3MapDataset.from_prefix(
        f"s3://{bucket}/data/", region=REGION, endpoint=cluster.endpoint,
        transform=lambda reader: (reader.key, reader.read()), s3client_config=config)
    assert len(dataset) == len(bodies)
    read = dict(dataset[i] for i in range(len(dataset)))
    assert read == bodies
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=True)
    assert dict(loader) == bodies
