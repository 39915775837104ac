# shardgate container image: one role per container (volume, gateway, rebalancer, admin).
# UNTESTED HERE: the build machines of this project run no Docker engine, so this file
# has never been built (docker-compose.yml and conf/k8s/ use it). For example:
#   docker run -v /srv/v1:/data -v ./cluster.toml:/etc/shardgate/cluster.toml \
#       shardgate volume --config /etc/shardgate/cluster.toml --id v1
#   docker run -p 9000:9000 -v ./cluster.toml:/etc/shardgate/cluster.toml \
#       shardgate gateway --config /etc/shardgate/cluster.toml
FROM python:3.11-slim-bookworm

WORKDIR /opt/shardgate
COPY pyproject.toml README.md ./
COPY shardgate ./shardgate
COPY gateway ./gateway
COPY volume_server ./volume_server
COPY placement ./placement
COPY erasure ./erasure
COPY conf ./conf
# /data: a volume's data directory; /var/lib/shardgate: the persisted copy of the
# cluster map (gateways and the rebalancer). Owned by the user the roles run as.
RUN pip install --no-cache-dir . && useradd --system --home /data shardgate \
    && mkdir -p /data /var/lib/shardgate && chown shardgate /data /var/lib/shardgate
USER shardgate
ENTRYPOINT ["shardgate"]
CMD ["--help"]
