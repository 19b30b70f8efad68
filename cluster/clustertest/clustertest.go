// Package clustertest makes what cluster tests need and a real deployment
// brings itself: a certificate authority and certificates for mutual TLS.
package clustertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority made for a test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is its certificate (PEM), what --tls-ca names.
	File string
}

var serial atomic.Int64

// NewCA makes a CA named name, its certificate written under dir.
func NewCA(tb testing.TB, dir, name string) *CA {
	tb.Helper()
	ca := &CA{File: filepath.Join(dir, name+"-ca.pem")}
	tmpl := &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca.cert, ca.key = certify(tb, name, tmpl, nil, ca.File)
	return ca
}

// Issue writes a certificate signed by ca for both serving and dialing (as
// every process of a cluster does) and its key, under dir; it returns their
// files (what --tls-cert and --tls-key name).
func (ca *CA) Issue(tb testing.TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	tmpl := &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	_, key := certify(tb, name, tmpl, ca, certFile)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	writePEM(tb, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

// certify makes a key and a certificate of tmpl for name, valid for an hour
// around now, signed by parent (nil: self-signed), written to file.
func certify(tb testing.TB, name string, tmpl *x509.Certificate, parent *CA, file string) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl.SerialNumber, tmpl.Subject = big.NewInt(serial.Add(1)), pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	writePEM(tb, file, "CERTIFICATE", der)
	return cert, key
}

func writePEM(tb testing.TB, file, kind string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
