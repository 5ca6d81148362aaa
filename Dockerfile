# syntax=docker/dockerfile:1
# Multi-stage build of the tradewind binary: a static executable on a
# minimal Debian base, run as an unprivileged user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/tradewind ./cmd/tradewind

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 65532 --create-home --home-dir /home/nonroot nonroot
COPY --from=build /out/tradewind /usr/local/bin/tradewind
WORKDIR /home/nonroot
# Listening on 0.0.0.0 puts serve in production mode: the api and ws roles
# need TRADEWIND_JWT_SECRET_FILE (or TRADEWIND_IDP_JWKS_URL) and nothing is
# generated or printed (docs/security.md). For a throwaway local try only:
#   docker run -e TRADEWIND_DEV=1 -p 8080:8080 tradewind:local
ENV TRADEWIND_DATA_DIR=/home/nonroot/.tradewind \
    TRADEWIND_HTTP_ADDR=0.0.0.0:8080 \
    TRADEWIND_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tradewind"]
CMD ["serve"]
