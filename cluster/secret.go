package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// SecretEnv is the environment variable LoadSecret reads when no secret file
// is given.
const SecretEnv = "DSTREAM_SECRET"

// ErrNoSecret is returned by LoadSecret when no secret is configured and
// insecure mode was not chosen.
var ErrNoSecret = errors.New("cluster: no shared secret: pass --secret-file or set " + SecretEnv + " (or choose --insecure explicitly)")

// LoadSecret returns the cluster's shared secret: the contents of the file at
// path when path is not empty, else the value of $DSTREAM_SECRET, with
// surrounding white space removed. An empty secret is an error (ErrNoSecret)
// unless insecure is true, in which case LoadSecret returns nil, nil and the
// caller runs without authentication.
func LoadSecret(path string, insecure bool) ([]byte, error) {
	var s string
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cluster: reading secret file: %w", err)
		}
		s = string(b)
	} else {
		s = os.Getenv(SecretEnv)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		if insecure {
			return nil, nil
		}
		if path != "" {
			return nil, fmt.Errorf("cluster: secret file %s is empty: %w", path, ErrNoSecret)
		}
		return nil, ErrNoSecret
	}
	return []byte(s), nil
}

// GenerateSecret returns a fresh random secret (32 bytes, hex-encoded), as a
// local-cluster master hands to the workers it starts.
func GenerateSecret() ([]byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("cluster: generating secret: %w", err)
	}
	return []byte(hex.EncodeToString(b[:])), nil
}

// authKey is the gRPC metadata key carrying the authentication token.
const authKey = "x-dstream-auth"

// authToken derives the token sent on the wire from the secret, so the secret
// itself never travels or lands in a log. The empty secret has no token.
func authToken(secret []byte) string {
	if len(secret) == 0 {
		return ""
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("dstream cluster auth v1"))
	return hex.EncodeToString(mac.Sum(nil))
}
