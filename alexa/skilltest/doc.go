// Package skilltest holds the end-to-end test of the Alexa skill: every
// intent, sent as a signed HTTPS request through alexa.NewHTTPHandler,
// drives real incidents on the embedded Temporal server with a worker and
// the simulated cloud (internal/e2e). It is a separate package so that the
// unit tests of package alexa keep running with the race detector while this
// one, which links the Temporal server, runs without it (scripts/test).
package skilltest
