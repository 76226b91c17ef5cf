# Multi-stage build: static binaries on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/worker ./worker \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/starter /usr/local/bin/
COPY testdata /opt/cordon/testdata
WORKDIR /opt/cordon
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/worker"]
