package engine

import (
	"log/slog"
	"testing"
)

// newTestEngine is New with the defaults for what cfg leaves zero, and
// a logger that discards.
func newTestEngine(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e, err := New(cfg.WithDefaults())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
