package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"/var/ck", "/var/ck"},
		{"ck", filepath.Join(wd, "ck")},
		{"file:///var/ck", "file:///var/ck"},
		{"file://ck", "file://" + filepath.Join(wd, "ck")},
		{"s3://bucket/jobs/a", "s3://bucket/jobs/a"},
	} {
		if got := Absolute(c.in); got != c.want {
			t.Errorf("Absolute(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
