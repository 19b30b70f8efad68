// Package bytesize parses and prints sizes in bytes as the --memory flags
// take them ("512MiB", "2G", "1073741824").
package bytesize

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteUnits maps a size suffix, in lower case, to its power of 1024.
var byteUnits = map[string]uint{
	"": 0, "b": 0,
	"k": 1, "kb": 1, "kib": 1,
	"m": 2, "mb": 2, "mib": 2,
	"g": 3, "gb": 3, "gib": 3,
	"t": 4, "tb": 4, "tib": 4,
}

// Parse parses a size in bytes, as taken by the --memory flags: a
// non-negative integer followed by an optional unit, B, K, M, G or T, alone
// or followed by B or iB, in any case ("512MiB", "1GiB", "2G", "300m",
// "1073741824"). Every unit is a power of 1024, as in Spark's and the JVM's
// memory settings: "2G" and "2GB" are 2 GiB.
func Parse(s string) (int64, error) {
	num := strings.TrimSpace(s)
	end := len(num)
	for end > 0 && (num[end-1] < '0' || num[end-1] > '9') {
		end--
	}
	shift, ok := byteUnits[strings.ToLower(strings.TrimSpace(num[end:]))]
	num = num[:end]
	if !ok || num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("size %q: want a whole number of bytes with an optional unit (B, KiB, MiB, GiB, TiB; K, M, G, T are the same), e.g. 512MiB", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64>>(10*shift) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << (10 * shift), nil
}

// Bytes is a positive size in bytes as a flag's value (flag.Value): it
// parses what Parse takes ("512MiB", "2G", "1073741824") and
// prints in the largest binary unit that divides it ("1GiB").
type Bytes int64

// Set parses s; a size that does not parse or is not positive is an error.
func (b *Bytes) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("size %q must be positive", s)
	}
	*b = Bytes(n)
	return nil
}

// String prints the size as Set takes it.
func (b Bytes) String() string {
	n := int64(b)
	if n != 0 {
		for _, u := range []struct {
			shift uint
			name  string
		}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
			if n%(1<<u.shift) == 0 {
				return strconv.FormatInt(n>>u.shift, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// MemoryFlag defines --memory on fs, the engine's memory budget
// (dstream.Config.MemoryBytes) as a Bytes, and returns where it is stored:
// def until the flag is set.
func MemoryFlag(fs *flag.FlagSet, def int64) *int64 {
	n := def
	fs.Var((*Bytes)(&n), "memory", "engine memory budget shared by input, state and execution: a `size` such as 512MiB, 2G or a number of bytes")
	return &n
}
