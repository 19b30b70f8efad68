package textout

import "testing"

func TestParseObjects(t *testing.T) {
	for _, c := range []struct {
		prefix, loc, stem string
		bad               bool
	}{
		{prefix: "s3://bucket/out/words", loc: "s3://bucket/out", stem: "words-"},
		{prefix: "s3://bucket/words", loc: "s3://bucket", stem: "words-"},
		{prefix: "s3://bucket/a/b/c/words", loc: "s3://bucket/a/b/c", stem: "words-"},
		{prefix: "s3://bucket/out/", loc: "s3://bucket/out", stem: "-"}, // as a local "out/"
		{prefix: "file:///tmp/out/words", loc: "file:///tmp/out", stem: "words-"},
		{prefix: "s3://bucket", bad: true},
		{prefix: "file:///words", bad: true}, // the root folder
		{prefix: "s3:///words", bad: true},
	} {
		o, err := ParseObjects(c.prefix, "")
		switch {
		case c.bad && err == nil:
			t.Errorf("ParseObjects(%q) = %+v; want an error", c.prefix, o)
		case !c.bad && (err != nil || o.Loc != c.loc || o.Stem != c.stem):
			t.Errorf("ParseObjects(%q) = %+v, %v; want %q, %q", c.prefix, o, err, c.loc, c.stem)
		}
	}
}

func TestIsIntervalName(t *testing.T) {
	for _, c := range []struct {
		name, stem, ext string
		want            bool
	}{
		{"words-1700000000000", "words-", "", true},
		{"words-7.txt", "words-", ".txt", true},
		{"words-7.txt", "words-", "", false},
		{"words-7", "words-", ".txt", false},
		{"words-7.csv", "words-", ".txt", false},
		{"words-", "words-", "", false},
		{"words-12a", "words-", "", false},
		{"words-2-7", "words-", "", false},
		{"other-7", "words-", "", false},
		{"xwords-7", "words-", "", false},
	} {
		if got := isIntervalName(c.name, c.stem, c.ext); got != c.want {
			t.Errorf("isIntervalName(%q, %q, %q) = %v, want %v", c.name, c.stem, c.ext, got, c.want)
		}
	}
}

func TestIsTempName(t *testing.T) {
	for _, c := range []struct {
		name, stem, ext string
		want            bool
	}{
		{".words-17.tmp-out", "words-", "", true},
		{".words-17.txt.tmp-123", "words-", ".txt", true},
		{"words-17.tmp-out", "words-", "", false},
		{".words-.tmp-out", "words-", "", false},
		{".words-17.csv.tmp-out", "words-", ".txt", false},
		{".words-17", "words-", "", false},
		{".other-17.tmp-out", "words-", "", false},
	} {
		if got := isTempName(c.name, c.stem, c.ext); got != c.want {
			t.Errorf("isTempName(%q, %q, %q) = %v, want %v", c.name, c.stem, c.ext, got, c.want)
		}
	}
}
