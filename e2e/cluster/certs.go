package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is long enough for any test run or local session and short enough that
// nobody mistakes these certificates for anything lasting.
const certValidity = 30 * 24 * time.Hour

// CA is a certificate authority held in memory. The control plane has one (the cluster
// CA, see Cluster.CA); tests create their own with NewCA, e.g. for a webhook server.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// NewCA creates a self-signed CA named commonName.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for CA %q: %w", commonName, err)
	}
	tmpl, err := certTemplate(commonName)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA %q: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA %q: %w", commonName, err)
	}
	return &CA{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}, nil
}

// CertPEM returns the CA certificate in PEM form, e.g. for a webhook's caBundle.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// KeyPEM returns the CA private key in PEM form (PKCS #8).
func (ca *CA) KeyPEM() ([]byte, error) { return keyPEM(ca.key) }

// ServingCert issues a TLS server certificate for hosts (IP addresses or DNS names).
func (ca *CA) ServingCert(hosts ...string) (tls.Certificate, error) {
	certPEM, keyPEM, err := ca.issueServing(hosts...)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// ClientCert issues a client certificate that the API server maps to user and groups
// (CN and O of the subject). It returns certificate and key in PEM form.
func (ca *CA) ClientCert(user string, groups ...string) (certPEM, keyPEM []byte, err error) {
	tmpl, err := certTemplate(user)
	if err != nil {
		return nil, nil, err
	}
	tmpl.Subject.Organization = groups
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.issue(tmpl)
}

func (ca *CA) issueServing(hosts ...string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("issue serving certificate: no hosts")
	}
	tmpl, err := certTemplate(hosts[0])
	if err != nil {
		return nil, nil, err
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return ca.issue(tmpl)
}

func (ca *CA) issue(tmpl *x509.Certificate) (certPEM, keyData []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key for %q: %w", tmpl.Subject.CommonName, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	keyData, err = keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), keyData, nil
}

func certTemplate(commonName string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour), // tolerate clock skew
		NotAfter:     now.Add(certValidity),
	}, nil
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// pki holds the file paths of the control plane's certificates and keys.
type pki struct {
	ca, frontProxyCA *CA

	caCert, caKey               string
	apiserverCert, apiserverKey string
	frontProxyCACert            string
	frontProxyCert              string
	frontProxyKey               string
	saPub, saKey                string
}

// writePKI creates every certificate and key the control plane needs under dir.
// apiserverHosts are the SANs of the API server's serving certificate.
func writePKI(dir string, apiserverHosts []string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create PKI dir: %w", err)
	}
	p := &pki{}
	var err error
	if p.ca, err = NewCA("sluice-e2e-ca"); err != nil {
		return nil, err
	}
	if p.frontProxyCA, err = NewCA("sluice-e2e-front-proxy-ca"); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	add := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		files[path] = data
		return path
	}

	caKey, err := p.ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	p.caCert = add("ca.crt", p.ca.certPEM)
	p.caKey = add("ca.key", caKey)
	p.frontProxyCACert = add("front-proxy-ca.crt", p.frontProxyCA.certPEM)

	cert, key, err := p.ca.issueServing(apiserverHosts...)
	if err != nil {
		return nil, err
	}
	p.apiserverCert = add("apiserver.crt", cert)
	p.apiserverKey = add("apiserver.key", key)

	cert, key, err = p.frontProxyCA.ClientCert(frontProxyClientName)
	if err != nil {
		return nil, err
	}
	p.frontProxyCert = add("front-proxy-client.crt", cert)
	p.frontProxyKey = add("front-proxy-client.key", key)

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, fmt.Errorf("marshal service-account public key: %w", err)
	}
	p.saKey = add("sa.key", saKeyPEM)
	p.saPub = add("sa.pub", pemBlock("PUBLIC KEY", saPubDER))

	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return p, nil
}

const frontProxyClientName = "front-proxy-client"
