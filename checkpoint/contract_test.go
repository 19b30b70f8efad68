package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/checkpoint/storetest"
)

// Dir keeps the Store contract, opened directly and by location.
func TestDirKeepsTheStoreContract(t *testing.T) {
	t.Run("OpenDir", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) checkpoint.Store {
			d, err := checkpoint.OpenDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		})
	})
	t.Run("Open(file://)", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) checkpoint.Store {
			s, err := checkpoint.Open(t.Context(), "file://"+t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.(*checkpoint.Dir).Close() })
			return s
		})
	})
}

func TestCheckLocation(t *testing.T) {
	tests := []struct {
		location string
		why      string // "" when valid
	}{
		{"/var/lib/dstream", ""},
		{"relative/folder", ""},
		{"file:///var/lib/dstream", ""},
		{"", "empty location"},
		{"file://", "names no folder"},
		{"gs://bucket/prefix", `scheme "gs" not supported`},
		{"nope://x", "supported: a folder, file://PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			err := checkpoint.CheckLocation(tt.location)
			if tt.why == "" {
				if err != nil {
					t.Fatalf("CheckLocation = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("CheckLocation = %v, want an error saying %q", err, tt.why)
			}
			if _, oerr := checkpoint.Open(t.Context(), tt.location); oerr == nil || oerr.Error() != err.Error() {
				t.Fatalf("Open = %v, want CheckLocation's error", oerr)
			}
		})
	}
}

// A registered scheme gets its locations, checked first.
func TestRegisterScheme(t *testing.T) {
	var opened []string
	checkpoint.RegisterScheme("test-scheme", checkpoint.Scheme{
		Check: func(location string) error {
			if strings.HasSuffix(location, "bad") {
				return errors.New("test-scheme: bad location")
			}
			return nil
		},
		Open: func(ctx context.Context, location string) (checkpoint.Store, error) {
			opened = append(opened, location)
			return checkpoint.OpenDir(t.TempDir())
		},
	})
	s, err := checkpoint.Open(t.Context(), "test-scheme://good")
	if err != nil {
		t.Fatal(err)
	}
	s.(*checkpoint.Dir).Close()
	if _, err := checkpoint.Open(t.Context(), "test-scheme://bad"); err == nil || !strings.Contains(err.Error(), "bad location") {
		t.Fatalf("Open of a location Check refuses = %v", err)
	}
	if len(opened) != 1 || opened[0] != "test-scheme://good" {
		t.Fatalf("opened %q, want only the good location", opened)
	}
	if err := checkpoint.CheckLocation("nope://x"); err == nil || !strings.Contains(err.Error(), "test-scheme://") {
		t.Fatalf("an unknown scheme's error does not list the registered ones: %v", err)
	}
	for _, name := range []string{"test-scheme", "file", "", "a:b"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterScheme(%q) did not panic", name)
				}
			}()
			checkpoint.RegisterScheme(name, checkpoint.Scheme{Check: func(string) error { return nil }, Open: func(context.Context, string) (checkpoint.Store, error) { return nil, nil }})
		}()
	}
}

// Dir keeps the Conditional contract.
func TestDirKeepsTheConditionalContract(t *testing.T) {
	storetest.RunConditional(t, func(t *testing.T) checkpoint.Conditional {
		d, err := checkpoint.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	})
}

// Spilling keeps the Store contract with everything in memory, everything
// in its folder, and some of each (a budget of 8 bytes: the contract's
// small objects fit until they are 8 bytes in all).
func TestSpillingKeepsTheStoreContract(t *testing.T) {
	for _, budget := range []int64{0, 8, 1 << 20} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) checkpoint.Store {
				d, err := checkpoint.OpenScratchDir(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				s, err := checkpoint.NewSpilling(t.Context(), d, budget)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
