package checkpoint

import (
	"context"
	"fmt"
	"strings"
)

// Open opens the store at location: a local folder (a path, or a file://
// URL). Other schemes are refused with an error naming them.
//
// (Object storage, s3://BUCKET/PREFIX, is being added: see issue #19.)
func Open(ctx context.Context, location string) (Store, error) {
	switch {
	case location == "":
		return nil, fmt.Errorf("checkpoint: empty location")
	case strings.HasPrefix(location, "file://"):
		return OpenDir(strings.TrimPrefix(location, "file://"))
	case strings.Contains(location, "://"):
		scheme, _, _ := strings.Cut(location, "://")
		return nil, fmt.Errorf("checkpoint: location %q: scheme %q not supported", location, scheme)
	}
	return OpenDir(location)
}
