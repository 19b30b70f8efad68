package kv_test

import (
	"testing"

	"github.com/dstream/dstream/kv"
)

func TestString(t *testing.T) {
	for _, c := range []struct {
		got  string
		want string
	}{
		{kv.KV("a", 1).String(), "(a,1)"},
		{kv.Some(2.5).String(), "Some(2.5)"},
		{kv.None[int]().String(), "None"},
		{kv.Opt[int]{Value: 3}.String(), "None"},
		{kv.KV("k", kv.Some("v")).String(), "(k,Some(v))"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestHelpers(t *testing.T) {
	if p := kv.KV("x", int64(7)); p.Key != "x" || p.Value != 7 {
		t.Errorf("KV = %+v", p)
	}
	if o := kv.Some(0); !o.OK || o.Value != 0 {
		t.Errorf("Some(0) = %+v", o)
	}
	if o := kv.None[string](); o.OK || o.Value != "" {
		t.Errorf("None = %+v", o)
	}
}
