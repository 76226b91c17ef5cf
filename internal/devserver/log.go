package devserver

import (
	"context"
	"log/slog"
	"sync/atomic"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// slogLogger adapts a *slog.Logger to the Temporal server's log.Logger,
// dropping every record below min (the server is very chatty at info level).
type slogLogger struct {
	log *slog.Logger
	min slog.Leveler
}

var (
	_ log.Logger      = slogLogger{}
	_ log.WithLogger  = slogLogger{}
	_ log.SLogWrapper = slogLogger{}
)

func (s slogLogger) Debug(msg string, tags ...tag.Tag) { s.emit(slog.LevelDebug, msg, tags) }
func (s slogLogger) Info(msg string, tags ...tag.Tag)  { s.emit(slog.LevelInfo, msg, tags) }
func (s slogLogger) Warn(msg string, tags ...tag.Tag)  { s.emit(slog.LevelWarn, msg, tags) }
func (s slogLogger) Error(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }

// DPanic, Panic and Fatal are logged as errors: an embedded server must never
// panic or exit the host process because of a log call.
func (s slogLogger) DPanic(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }
func (s slogLogger) Panic(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }
func (s slogLogger) Fatal(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }

// With returns a logger with the tags prepended to every record.
func (s slogLogger) With(tags ...tag.Tag) log.Logger {
	if len(tags) == 0 {
		return s
	}
	args := make([]any, len(tags))
	for i, t := range tags {
		args[i] = slog.Any(t.Key(), t.Value())
	}
	return slogLogger{log: s.log.With(args...), min: s.min}
}

// SLog is used by the server (log.NewSlogLogger) for components that log via
// slog directly; the returned logger applies the same level filter.
func (s slogLogger) SLog() *slog.Logger {
	return slog.New(levelHandler{min: s.min, next: s.log.Handler()})
}

func (s slogLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	if level < s.min.Level() {
		return
	}
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
}

// levelHandler is a slog.Handler that drops records below min.
type levelHandler struct {
	min  slog.Leveler
	next slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min.Level() && h.next.Enabled(ctx, level)
}

func (h levelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.min.Level() {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{min: h.min, next: h.next.WithAttrs(attrs)}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{min: h.min, next: h.next.WithGroup(name)}
}

// sdkLogger is the Go SDK logger used by the internal readiness client.
func sdkLogger(l *slog.Logger, min slog.Leveler) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(levelHandler{min: min, next: l.Handler()}))
}

// levelGate is the slog.Leveler used for server logs: the configured minimum
// level, raised while the server stops (shutdown produces a burst of
// "failed to poll"/"dial error" warnings) and closed entirely afterwards
// (the server leaks a few gRPC connections that keep redialing).
type levelGate struct {
	base  slog.Leveler
	floor atomic.Int64
}

const (
	gateOpen     = slog.Level(-1 << 20)
	gateStopping = slog.LevelError
	gateClosed   = slog.Level(1 << 20)
)

func newLevelGate(base slog.Leveler) *levelGate {
	g := &levelGate{base: base}
	g.floor.Store(int64(gateOpen))
	return g
}

func (g *levelGate) Level() slog.Level {
	return max(g.base.Level(), slog.Level(g.floor.Load()))
}

func (g *levelGate) raise(l slog.Level) { g.floor.Store(int64(l)) }
