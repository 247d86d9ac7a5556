# ipsync. make build | test | lambda | image | push | demo | lint | snapshot | release | ci | clean
# The deployment guide (README) says which targets each way of running needs.

# The version stamped into the binary: git's (the latest tag, commits since it, -dirty), or VERSION=... given.
# make push IMAGE=...:v1.0.0 stamps v1.0.0: an IMAGE given with a version tag (vMAJOR.MINOR.PATCH, optionally
# -suffix) is the version when VERSION is not given, so the image and the binary in it say the same.
ifneq ($(filter command line environment,$(origin IMAGE)),)
ifeq ($(filter command line environment,$(origin VERSION)),)
IMAGE_TAG := $(lastword $(subst :, ,$(lastword $(subst /, ,$(IMAGE)))))
ifneq ($(shell printf '%s' '$(IMAGE_TAG)' | grep -Ex 'v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?'),)
VERSION := $(IMAGE_TAG)
endif
endif
endif
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X github.com/ipsync/ipsync/internal/cli.version=$(VERSION) -X github.com/ipsync/ipsync/internal/cli.commit=$(COMMIT)
# Static (CGO_ENABLED=0), reproducible paths, version stamped, without the demo and its test doubles (nodemo):
# the same flags as the Dockerfile's build.
BUILDFLAGS  := -tags lambda.norpc,nodemo -trimpath -ldflags "$(LDFLAGS)"
IMAGE       ?= ipsync:$(VERSION)
PLATFORM    ?= linux/amd64
LAMBDA_ARCH ?= arm64

.DEFAULT_GOAL := build
.PHONY: build test lambda image push demo lint snapshot release ci clean

# bin/ipsync for this machine.
build:
	CGO_ENABLED=0 go build $(BUILDFLAGS) -o bin/ipsync ./cmd/ipsync

# The test command of README and .ci/run (go test ./deploy checks the three agree).
test:
	go test -race -count=1 -timeout 20m ./...

# dist/ipsync-lambda-arm64.zip: the binary as `bootstrap`, for the provided.al2023 runtime on arm64.
lambda:
	rm -rf dist/lambda && mkdir -p dist/lambda
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) go build $(BUILDFLAGS) -o dist/lambda/bootstrap ./cmd/ipsync
	rm -f dist/ipsync-lambda-$(LAMBDA_ARCH).zip
	cd dist/lambda && zip -q -X ../ipsync-lambda-$(LAMBDA_ARCH).zip bootstrap
	@echo dist/ipsync-lambda-$(LAMBDA_ARCH).zip

# The container image (needs a Docker engine). PLATFORM=linux/arm64 for ARM64 Fargate.
image:
	docker build --platform $(PLATFORM) --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

# make push IMAGE=123456789012.dkr.ecr.us-east-1.amazonaws.com/ipsync:v1.0.0 (after docker login).
push: image
	docker push $(IMAGE)

# The demo needs no optimised code: without optimisation the first (cold) build takes half the CPU time and memory.
demo:
	go run -gcflags='all=-N -l' ./cmd/ipsync demo

lint:
	cfn-lint deploy/*/*.yaml

# Releases (.goreleaser.yaml): snapshot builds dist/ without a tag and publishes nothing; release needs a tag
# vX.Y.Z on HEAD and GITHUB_TOKEN. Both need goreleaser and cyclonedx-gomod (.ci/run installs them).
snapshot:
	goreleaser release --snapshot --clean

release:
	goreleaser release --clean

ci:
	bash .ci/run

clean:
	rm -rf bin dist
