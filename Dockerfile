# syntax=docker/dockerfile:1
# The kpo image: the manager (/manager, the Deployment's command) and every command under ./cmd
# (/kpoctl, /kpo-fn-wrapper, ...), static, on distroless as a non-root user. /kpo-fn must stay
# next to /manager: the manager runs starlark in it, under a memory and time budget.

FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /workspace
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
# ./cmd is the manager; each directory below it is one more binary, named after it.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    export GOOS="${TARGETOS}" GOARCH="${TARGETARCH:-$(go env GOARCH)}"; \
    mkdir -p /out; \
    go build -trimpath -ldflags="-s -w" -o /out/manager ./cmd; \
    for dir in cmd/*/; do \
      name="$(basename "${dir}")"; \
      go build -trimpath -ldflags="-s -w" -o "/out/${name}" "./cmd/${name}"; \
    done; \
    ls -l /out

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /out/ /
USER 65532:65532
ENTRYPOINT ["/manager"]
