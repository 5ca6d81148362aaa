# syntax=docker/dockerfile:1
# Multi-stage build of the tradewind binary: a static executable on a
# distroless base (no shell, non-root).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/tradewind ./cmd/tradewind

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tradewind /usr/local/bin/tradewind
WORKDIR /home/nonroot
ENV TRADEWIND_DATA_DIR=/home/nonroot/.tradewind \
    TRADEWIND_HTTP_ADDR=0.0.0.0:8080 \
    TRADEWIND_LOG_FORMAT=json
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tradewind"]
CMD ["serve"]
