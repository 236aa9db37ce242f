# The okrhub hub: the same binary the tests run (`cargo build --release --locked`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin okrhub

FROM debian:bookworm-slim
RUN useradd --system --home /data okrhub && mkdir -p /data && chown okrhub /data
COPY --from=build /src/target/release/okrhub /usr/local/bin/okrhub
USER okrhub
# Listening on 0.0.0.0 needs a key: set OKRHUB_JWT_SECRET or OKRHUB_JWT_KEYS (README, Security).
ENV OKRHUB_LISTEN=0.0.0.0:4680 \
    OKRHUB_DATA_DIR=/data
VOLUME /data
EXPOSE 4680
ENTRYPOINT ["okrhub"]
CMD ["serve"]
