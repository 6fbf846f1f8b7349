# wsrec in a container.
#
#   docker build -t wsrec .
#   docker run -d --name wsrec --restart=always --stop-timeout 45 \
#       -v wsrec-data:/var/lib/wsrec -p 127.0.0.1:9464:9464 \
#       -v "$PWD/my.toml:/etc/wsrec/wsrec.toml:ro" wsrec
#   docker exec wsrec wsrec status -c /etc/wsrec/wsrec.toml
#
# `docker stop` sends SIGTERM: wsrec drains and closes every file within its shutdown_timeout
# (30s in deploy/wsrec.toml). Docker's default grace is 10s, hence --stop-timeout (compose:
# stop_grace_period) above shutdown_timeout.

FROM rust:1.95-trixie AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wsrec

FROM debian:trixie-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/wsrec \
        --shell /usr/sbin/nologin wsrec \
    && install -d -o wsrec -g wsrec -m 0750 /var/lib/wsrec
COPY --from=build /src/target/release/wsrec /usr/local/bin/wsrec
COPY deploy/wsrec.toml /etc/wsrec/wsrec.toml
USER wsrec
WORKDIR /var/lib/wsrec
# output_dir of deploy/wsrec.toml; the status socket lives there too.
VOLUME ["/var/lib/wsrec"]
# The metrics endpoint, on every interface of the container (publish it on the host's loopback
# or a private network, not the internet).
EXPOSE 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wsrec"]
# No journal: a container's /dev/shm ends with the container, so lines kept there would be
# lost with it; without one, each idle moment's lines go to the volume's page cache, which a
# dying container leaves to the host.
CMD ["record", "-c", "/etc/wsrec/wsrec.toml", "--metrics-listen", "0.0.0.0:9464", "--journal-dir", ""]
