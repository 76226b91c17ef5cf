package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
)

// DefaultRateLimitWait is the longest a channel waits out one HTTP 429 when
// Notifier.RateLimitWait is zero. The "opened" alert runs before isolation,
// so every second waited here delays containment: keep it short.
const DefaultRateLimitWait = 10 * time.Second

// rateLimitAttempts is how many times one request is sent when the server
// keeps answering 429 with a wait within the bound.
const rateLimitAttempts = 3

// resetMargin is added to a wait computed from X-RateLimit-Reset (whole
// seconds, the server's clock) so the retry lands after the window reset.
const resetMargin = 250 * time.Millisecond

// httpCall is one request of an alert channel.
type httpCall struct {
	what   string // what the request does, for messages: "breathe", "set states"
	method string
	url    string // may hold a secret (IFTTT key): never put into messages
	body   any    // JSON body; nil: none
	bearer string // Authorization: Bearer <bearer>; "": none
	limit  int64  // bytes of a successful response to read; 0: 512
}

// errRedacted hides URLs (they carry the IFTTT key) from error messages.
var errRedacted = errors.New("request failed")

func (n *Notifier) client() *http.Client {
	if n.HTTP != nil {
		return n.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (n *Notifier) rateLimitWait() time.Duration {
	if n.RateLimitWait > 0 {
		return n.RateLimitWait
	}
	return DefaultRateLimitWait
}

// do sends c and returns the response body of a 2xx answer. On HTTP 429 it
// waits as long as the server asks (Retry-After, or LIFX's X-RateLimit-Reset)
// and sends again, up to rateLimitAttempts times — but only when that wait
// is within RateLimitWait and leaves time before ctx's deadline; otherwise
// it gives up at once with an error that says why. A 429 that names no wait
// is not retried.
func (n *Notifier) do(ctx context.Context, lg log.Logger, c httpCall) ([]byte, error) {
	var body []byte
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return nil, err
		}
		body = b
	}
	for attempt := 1; ; attempt++ {
		resp, msg, err := n.once(ctx, c, body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 300 {
			return msg, nil
		}
		where := c.method + " " + resp.Request.URL.Host
		if c.what != "" {
			where = c.what + ": " + where
		}
		text := strings.TrimSpace(string(msg))
		if len(text) > 512 {
			text = text[:512]
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			return nil, fmt.Errorf("%s: HTTP %d: %s", where, resp.StatusCode, text)
		}
		wait, source, ok := retryAfter(resp.Header, time.Now())
		if !ok {
			return nil, fmt.Errorf("%s: HTTP 429 (rate limited; no Retry-After or X-RateLimit-Reset, not retried): %s", where, text)
		}
		if attempt >= rateLimitAttempts {
			return nil, fmt.Errorf("%s: HTTP 429 (still rate limited after %d attempts, gave up): %s", where, attempt, text)
		}
		limit := n.rateLimitWait()
		if dl, ok := ctx.Deadline(); ok {
			// Leave time for the retried request itself.
			if left := time.Until(dl) - time.Second; left < limit {
				limit = max(left, 0)
			}
		}
		if wait > limit {
			return nil, fmt.Errorf("%s: HTTP 429 (rate limited for %s more per %s, beyond the %s an alert may wait: gave up): %s",
				where, wait.Round(time.Second), source, limit.Round(100*time.Millisecond), text)
		}
		lg.Warn("alert channel rate limited: waiting before sending again", "request", where, "wait", wait.String(), "source", source, "attempt", attempt)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: HTTP 429: waiting %s for the rate limit: %w", where, wait.Round(time.Second), ctx.Err())
		case <-t.C:
		}
	}
}

// once sends c once. It returns the response (body closed) and up to limit
// bytes of its body.
func (n *Notifier) once(ctx context.Context, c httpCall, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, rd)
	if err != nil {
		return nil, nil, errRedacted
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := n.client().Do(req)
	if err != nil {
		// *url.Error prints the URL, which may hold a key: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			where := c.method + " " + req.URL.Host
			if c.what != "" {
				where = c.what + ": " + where
			}
			return nil, nil, fmt.Errorf("%s: %w", where, ue.Err)
		}
		return nil, nil, errRedacted
	}
	defer resp.Body.Close()
	limit := c.limit
	if limit <= 0 || resp.StatusCode >= 300 {
		limit = 512
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp, msg, nil
}

// retryAfter reads how long a 429 asks to wait: Retry-After (seconds or an
// HTTP date), else X-RateLimit-Reset (LIFX: the Unix time in seconds when
// the window resets; a small number is taken as seconds from now).
func retryAfter(h http.Header, now time.Time) (time.Duration, string, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 1e9 {
			return time.Duration(s * float64(time.Second)), "Retry-After", true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), "Retry-After", true
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s < 0 {
			return 0, "", false
		}
		if s < 1e9 { // not a Unix time (that would be before 2001): seconds from now
			return time.Duration(s*float64(time.Second)) + resetMargin, "X-RateLimit-Reset", true
		}
		reset := time.Unix(0, int64(s*float64(time.Second)))
		return max(reset.Sub(now), 0) + resetMargin, "X-RateLimit-Reset", true
	}
	return 0, "", false
}
