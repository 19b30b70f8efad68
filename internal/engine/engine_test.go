package engine

import (
	"log/slog"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
)

// newTestEngine is New with the API's defaults for what cfg leaves zero.
func newTestEngine(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	if cfg.Master == "" {
		cfg.Master = "local[2]"
	}
	if cfg.BatchInterval == 0 {
		cfg.BatchInterval = time.Second
	}
	if cfg.BlockInterval == 0 {
		cfg.BlockInterval = min(200*time.Millisecond, cfg.BatchInterval)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.MaxTaskAttempts == 0 {
		cfg.MaxTaskAttempts = 4
	}
	if cfg.MemoryBytes == 0 {
		cfg.MemoryBytes = 1 << 30
	}
	if cfg.MaxPendingBatches == 0 {
		cfg.MaxPendingBatches = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
