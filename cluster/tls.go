package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS is a process's identity in a cluster with mutual TLS: every process
// serves with its certificate and presents it when it dials a peer, and
// accepts a peer only if the peer's certificate is signed by the cluster's
// CA. Peers are addressed by whatever address they advertise (pod IPs,
// host names, loopback), so a certificate's names are not checked: holding a
// certificate of the cluster's CA is what admits a process, as a shared
// truststore does in Spark. The shared secret is checked on top.
type TLS struct {
	cert tls.Certificate
	cas  *x509.CertPool
}

// LoadTLS reads a certificate and its key (PEM) and the CA certificate(s)
// that sign the cluster's processes. All three are required.
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("cluster: mutual TLS needs --tls-cert, --tls-key and --tls-ca together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: TLS CA: %w", err)
	}
	cas := x509.NewCertPool()
	if !cas.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster: TLS CA: %s holds no PEM certificate", caFile)
	}
	return &TLS{cert: cert, cas: cas}, nil
}

// verify accepts a peer whose certificate chains to the cluster's CA.
func (t *TLS) verify(usage x509.ExtKeyUsage) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("cluster: the peer presented no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, b := range raw {
			c, err := x509.ParseCertificate(b)
			if err != nil {
				return fmt.Errorf("cluster: peer certificate: %w", err)
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: t.cas, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
		if err != nil {
			return fmt.Errorf("cluster: peer certificate not signed by the cluster's CA: %w", err)
		}
		return nil
	}
}

// serverOption is the TLS a server requires (none when t is nil).
func (t *TLS) serverOption() []grpc.ServerOption {
	if t == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		// The client's certificate is required; verify checks its chain.
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: t.verify(x509.ExtKeyUsageClientAuth),
	}))}
}

// dialOption is the transport a client dials peers with.
func (t *TLS) dialOption() grpc.DialOption {
	if t == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		// Names are not checked (see TLS); verify checks the chain.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: t.verify(x509.ExtKeyUsageServerAuth),
	}))
}
