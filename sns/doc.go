// Package sns is Cordon's Amazon SNS HTTP(S) endpoint: it verifies what SNS
// delivers exactly as AWS specifies for HTTP subscribers, confirms the
// subscriptions of allowlisted topics, turns the alerts it understands
// (ElastAlert's SNS body, ElastAlert 2's http_post2 JSON, GuardDuty findings
// delivered through EventBridge, Cordon's own detection JSON) into incidents,
// and answers with the status code that makes SNS do the right thing:
//
//   - verified, handed to Temporal (or a duplicate of one that was): 200
//   - verified but not understood or not actionable: 200 and a log line with
//     the reason and the MessageId (a retry would not help; no retry storm)
//   - verified but Temporal (or the instance lookup) failed: 503, so SNS
//     retries and nothing is lost; the MessageId is not remembered
//   - not verified: 403 with the reason logged; oversize: 413; malformed
//     JSON: 400; not POST: 405
//
// Trust model. Nothing in a request is trusted before its signature is
// verified: the message type and topic are read from the signed body, never
// from the x-amz-sns-* headers. The signing certificate is only fetched from
// https://sns.<region>.amazonaws.com[.cn]/….pem (no redirects, timeout, size
// cap, cached), must be within its validity period, and the TopicArn must be
// in the configured allowlist before any network access. Raw message delivery
// carries no signature: it is accepted only with the configured shared
// secret. A test-only trust hook (InsecureTestTrust) accepts an emulator's
// certificate URL and replaces the clock; it refuses to work outside a test
// binary and is not part of Config.
package sns
