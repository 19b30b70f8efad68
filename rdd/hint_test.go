package rdd

import "testing"

func TestSizeHints(t *testing.T) {
	var h sizeHints
	stream := ID{Op: 3, Time: 1_000, Seq: 1}
	later := ID{Op: 3, Time: 2_000, Seq: 1} // the same operator, next interval
	static := ID{Op: 0, Time: 0, Seq: 1}
	steps := []struct {
		name string
		do   func()
		id   ID
		side int8
		want int
	}{
		{"nothing recorded: the default", func() {}, stream, 0, 64},
		{"recorded size carries to the next interval", func() { h.put(stream, 0, 5000) }, later, 0, 5000},
		{"each side has its own", func() {}, later, 1, 64},
		{"never below the default", func() { h.put(stream, 0, 10) }, later, 0, 64},
		{"static datasets get no hint", func() { h.put(static, 0, 5000) }, static, 0, 64},
	}
	for _, s := range steps {
		s.do()
		if got := h.get(s.id, s.side, 64); got != s.want {
			t.Errorf("%s: get = %d, want %d", s.name, got, s.want)
		}
	}
}

func TestSizeHintsAreBounded(t *testing.T) {
	var h sizeHints
	for i := range maxHints + 100 {
		h.put(ID{Op: 1, Seq: int32(i)}, 0, 100)
	}
	n := 0
	h.m.Range(func(any, any) bool { n++; return true })
	if n != maxHints {
		t.Fatalf("%d hints kept, want the bound %d", n, maxHints)
	}
	if got := h.get(ID{Op: 1, Seq: maxHints + 50}, 0, 8); got != 8 {
		t.Fatalf("an operator past the bound got hint %d, want the default", got)
	}
	h.put(ID{Op: 1, Seq: 0}, 0, 700) // known operators still update
	if got := h.get(ID{Op: 1, Seq: 0}, 0, 8); got != 700 {
		t.Fatalf("known operator's hint = %d after the bound, want 700", got)
	}
}
