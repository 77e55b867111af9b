package certs

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Bundle is a CA and a serving certificate, PEM-encoded: what a directory of mounted files
// holds (cert-manager's layout, and the test harness's).
type Bundle struct {
	CACert, Cert, Key []byte
	NotAfter          time.Time
}

// Generate makes a fresh CA and a serving certificate for hosts (DNS names or IP addresses),
// valid for validity from now.
func Generate(hosts []string, validity time.Duration, now time.Time) (Bundle, error) {
	ca, err := NewAuthority("sluice-webhook-ca", now, validity)
	if err != nil {
		return Bundle{}, err
	}
	s, err := ca.Issue(hosts, now, validity)
	if err != nil {
		return Bundle{}, err
	}
	return Bundle{CACert: ca.CertPEM, Cert: s.CertPEM, Key: s.KeyPEM, NotAfter: s.Cert.NotAfter}, nil
}

// WriteDir writes tls.crt, tls.key and ca.crt into dir, the layout the webhook server reads.
func (b Bundle) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{KeyTLSCert: b.Cert, KeyTLSKey: b.Key, KeyCACert: b.CACert} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
