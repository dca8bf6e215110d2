# RustMap in a container, on Debian slim (docs/install.md § Docker):
#   docker build -t rustmap .
#   docker run --rm --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN rustmap -sS -p 22,80 192.0.2.10
#   docker run --rm -v "$PWD:/data" --cap-drop ALL --cap-add NET_RAW rustmap -oX scan.xml 192.0.2.10
# Scans from the container's own network namespace unless given --network host.

# Built on the Debian release the image runs, so the binary's glibc matches.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked -p rustmap-cli \
    && install -D target/dist/rustmap /out/rustmap

FROM debian:bookworm-slim
# ca-certificates: HTTPS webhooks (--webhook) check the server's certificate.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/rustmap /usr/local/bin/rustmap
# The process runs as the container's root, which holds only the capabilities `docker run`
# grants (--cap-add NET_RAW for raw scans). No setcap on the binary: a file capability missing
# from the container's bounding set would make the kernel refuse to run it at all.
# HOME is /data: the history database, profiles and config.toml live in the mounted volume.
ENV HOME=/data
WORKDIR /data
VOLUME /data
ENTRYPOINT ["rustmap"]
CMD ["--help"]
