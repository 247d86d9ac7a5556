# syntax=docker/dockerfile:1
# ipsync: a static binary on distroless, non-root, no shell. Build: make image (docker build --build-arg
# VERSION=... --build-arg COMMIT=... .). The container health check is `ipsync healthcheck` (the daemon's /readyz).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH
# Where the binary goes; only .ci/run changes it (the COPY below reads /out).
ARG OUT=/out
# -tags: lambda.norpc drops the Lambda library's unused RPC mode; nodemo leaves out `ipsync demo` and its test doubles.
# ci:build - .ci/run runs the next line as it is (with these ARGs as environment) and checks the binary is static.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -tags lambda.norpc,nodemo -trimpath -ldflags "-s -w -X github.com/ipsync/ipsync/internal/cli.version=${VERSION} -X github.com/ipsync/ipsync/internal/cli.commit=${COMMIT}" -o ${OUT}/ipsync ./cmd/ipsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ipsync /ipsync
USER nonroot:nonroot
EXPOSE 9796
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["/ipsync", "healthcheck"]
ENTRYPOINT ["/ipsync"]
CMD ["run"]
