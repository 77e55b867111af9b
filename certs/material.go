package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Keys of the Secret that holds the self-managed certificates. tls.crt, tls.key and ca.crt are
// the names cert-manager and kubernetes.io/tls Secrets use, so the same Secret can be mounted
// and served in files mode.
const (
	KeyTLSCert = "tls.crt"
	KeyTLSKey  = "tls.key"
	// KeyCACert is the CA that signed tls.crt.
	KeyCACert = "ca.crt"
	KeyCAKey  = "ca.key"
	// KeyNextCACert is the CA that will sign the next serving certificate. It is trusted (in
	// the bundle) from the moment it is made, a whole rotation period before it signs anything.
	KeyNextCACert = "next-ca.crt"
	KeyNextCAKey  = "next-ca.key"
	// KeyPreviousCACert is the CA that signed the serving certificate before the last
	// rotation; it stays trusted until the next rotation (or its expiry), so a replica that
	// still serves the old certificate is still trusted.
	KeyPreviousCACert = "previous-ca.crt"
	// KeyCABundle is what the webhook configuration's caBundle must be: previous (while
	// valid), current and next CA.
	KeyCABundle = "ca-bundle.crt"
)

// Material is the parsed content of the certificate Secret.
type Material struct {
	CA, NextCA *Authority
	Previous   *x509.Certificate
	Serving    Serving
	// Bundle is the caBundle as stored (it is recomputed by Bundle).
	StoredBundle []byte
}

// Decode parses the Secret's data. A missing or unreadable part is an error naming it: the
// caller treats such a Secret as one to start afresh (Decide says so).
func Decode(data map[string][]byte) (Material, error) {
	var m Material
	var errs []error
	ca, err := ParseAuthority(data[KeyCACert], data[KeyCAKey])
	if err != nil {
		errs = append(errs, fmt.Errorf("%s/%s: %w", KeyCACert, KeyCAKey, err))
	}
	m.CA = ca
	if len(data[KeyNextCACert]) > 0 || len(data[KeyNextCAKey]) > 0 {
		next, err := ParseAuthority(data[KeyNextCACert], data[KeyNextCAKey])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", KeyNextCACert, KeyNextCAKey, err))
		}
		m.NextCA = next
	}
	if len(data[KeyPreviousCACert]) > 0 {
		prev, err := parseCert(data[KeyPreviousCACert])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", KeyPreviousCACert, err))
		}
		m.Previous = prev
	}
	if cert, err := parseCert(data[KeyTLSCert]); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", KeyTLSCert, err))
	} else if _, err := tls.X509KeyPair(data[KeyTLSCert], data[KeyTLSKey]); err != nil {
		errs = append(errs, fmt.Errorf("%s/%s: %w", KeyTLSCert, KeyTLSKey, err))
	} else {
		m.Serving = Serving{Cert: cert, CertPEM: data[KeyTLSCert], KeyPEM: data[KeyTLSKey]}
	}
	m.StoredBundle = data[KeyCABundle]
	return m, errors.Join(errs...)
}

// Encode is the Secret's data for m, with the bundle computed for now.
func (m Material) Encode(now time.Time) (map[string][]byte, error) {
	caKey, err := m.CA.KeyPEM()
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{
		KeyTLSCert:  m.Serving.CertPEM,
		KeyTLSKey:   m.Serving.KeyPEM,
		KeyCACert:   m.CA.CertPEM,
		KeyCAKey:    caKey,
		KeyCABundle: m.Bundle(now),
	}
	if m.NextCA != nil {
		nextKey, err := m.NextCA.KeyPEM()
		if err != nil {
			return nil, err
		}
		data[KeyNextCACert], data[KeyNextCAKey] = m.NextCA.CertPEM, nextKey
	}
	if m.Previous != nil {
		data[KeyPreviousCACert] = encodeCert(m.Previous.Raw)
	}
	return data, nil
}

// Bundle is the caBundle the webhook configuration must carry at now: the previous CA while
// it is still valid, the current CA and the next one, in that order.
func (m Material) Bundle(now time.Time) []byte {
	var b bytes.Buffer
	if m.Previous != nil && now.Before(m.Previous.NotAfter) {
		b.Write(encodeCert(m.Previous.Raw))
	}
	if m.CA != nil {
		b.Write(encodeCert(m.CA.Cert.Raw))
	}
	if m.NextCA != nil {
		b.Write(encodeCert(m.NextCA.Cert.Raw))
	}
	return b.Bytes()
}

// Verify checks that the serving certificate chains to a CA of bundle for host at now: what
// the API server checks when it calls the webhook.
func Verify(servingPEM, bundle []byte, host string, now time.Time) error {
	cert, err := parseCert(servingPEM)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return errors.New("the CA bundle holds no certificate")
	}
	_, err = cert.Verify(x509.VerifyOptions{
		DNSName: host, Roots: roots, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}
