# Multi-stage build: static binaries on a distroless, non-root base.
FROM golang:1.26.11 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/worker ./worker \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/starter ./starter

# httpcheck URL: exits 0 only when URL answers 200. The compose health checks
# run it (docker-compose.yml): the distroless base has no shell, curl or wget,
# and this is all a health check needs (no shell added to the image).
RUN mkdir -p /tmp/httpcheck && printf '%s\n' \
    'package main' \
    '' \
    'import (' \
    '	"fmt"' \
    '	"net/http"' \
    '	"os"' \
    '	"time"' \
    ')' \
    '' \
    'func main() {' \
    '	if len(os.Args) != 2 {' \
    '		fmt.Fprintln(os.Stderr, "usage: httpcheck URL")' \
    '		os.Exit(2)' \
    '	}' \
    '	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(os.Args[1])' \
    '	if err != nil {' \
    '		fmt.Fprintln(os.Stderr, err)' \
    '		os.Exit(1)' \
    '	}' \
    '	res.Body.Close()' \
    '	if res.StatusCode != http.StatusOK {' \
    '		fmt.Fprintln(os.Stderr, os.Args[1]+":", res.Status)' \
    '		os.Exit(1)' \
    '	}' \
    '}' > /tmp/httpcheck/main.go \
 && cd /tmp/httpcheck && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/httpcheck main.go \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/starter /out/httpcheck /usr/local/bin/
COPY testdata /opt/cordon/testdata
# The worker's data directory (.cordon next to --db, e.g. the LIFX lights'
# state), writable by nonroot: the base has no shell to mkdir/chown with, so an
# empty directory is copied. A volume mounted there starts with its owner.
COPY --from=build --chown=65532:65532 /out/data /opt/cordon/.cordon
WORKDIR /opt/cordon
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/worker"]
