package graphspec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
)

// TypeFingerprint is a short digest of the structure of a record type, as
// its encoding in a checkpoint depends on it: kinds, element types, array
// lengths, and struct fields (every field, by name, in order, with its
// type's structure). Two types of the same structure have the same
// fingerprint whatever their names, so renaming a type keeps a checkpoint
// readable; a field added, removed, renamed or retyped changes it.
func TypeFingerprint(t reflect.Type) string {
	var b strings.Builder
	typeShape(&b, t, map[reflect.Type]int{})
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// typeShape writes t's structure to b; seen numbers the named types being
// described, so a recursive type refers back to itself.
func typeShape(b *strings.Builder, t reflect.Type, seen map[reflect.Type]int) {
	if t == nil {
		b.WriteString("nil")
		return
	}
	if i, ok := seen[t]; ok {
		fmt.Fprintf(b, "@%d", i)
		return
	}
	if t.Name() != "" {
		seen[t] = len(seen)
	}
	switch t.Kind() {
	case reflect.Pointer:
		b.WriteString("*")
		typeShape(b, t.Elem(), seen)
	case reflect.Slice:
		b.WriteString("[]")
		typeShape(b, t.Elem(), seen)
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		typeShape(b, t.Elem(), seen)
	case reflect.Map:
		b.WriteString("map[")
		typeShape(b, t.Key(), seen)
		b.WriteString("]")
		typeShape(b, t.Elem(), seen)
	case reflect.Struct:
		b.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			if i > 0 {
				b.WriteString(";")
			}
			b.WriteString(f.Name)
			b.WriteString(" ")
			typeShape(b, f.Type, seen)
		}
		b.WriteString("}")
	case reflect.Interface, reflect.Func, reflect.Chan:
		// Not encodable by structure: the type's own description.
		b.WriteString(t.String())
	default:
		b.WriteString(t.Kind().String())
	}
}
