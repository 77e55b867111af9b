package certs

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// Action is what the Secret needs.
type Action string

const (
	// Keep: the Secret is fine as it is.
	Keep Action = ""
	// Create: a new CA, a next CA and a serving certificate (missing or unusable Secret).
	Create Action = "Create"
	// StageNext: add a next CA to the bundle (a Secret written without one, or one expired).
	StageNext Action = "StageNext"
	// Rotate: the serving certificate is re-signed by the next CA, which becomes current; the
	// current CA becomes previous; a new next CA is made.
	Rotate Action = "Rotate"
	// Reissue: the serving certificate is re-signed by the current CA for the wanted hosts.
	Reissue Action = "Reissue"
	// Rebundle: only the stored bundle is out of date (the previous CA expired).
	Rebundle Action = "Rebundle"
)

// Want is what the serving certificate must be.
type Want struct {
	// Hosts are the DNS names and IP addresses the API server dials.
	Hosts []string
	// Validity of a serving certificate; CAs live twice as long, so the next CA can still sign
	// a full-length certificate when its turn comes.
	Validity time.Duration
}

// CAValidity is how long a CA made for w lives.
func (w Want) CAValidity() time.Duration { return 2 * w.Validity }

// RenewAt is when a serving certificate is rotated: when less than a third of the wanted
// validity remains before it expires, and at the latest two thirds of the wanted validity
// after it was issued (so a shorter validity, once configured, applies at once).
func RenewAt(cert Serving, validity time.Duration) time.Time {
	byExpiry := cert.Cert.NotAfter.Add(-validity / 3)
	byIssue := cert.Cert.NotBefore.Add(clockSkew + 2*validity/3)
	if byIssue.Before(byExpiry) {
		return byIssue
	}
	return byExpiry
}

// Decision is an action and the reason for it, in a sentence.
type Decision struct {
	Action Action
	Reason string
}

// Decide says what the Secret needs at now. decodeErr is Decode's error: a Secret that cannot
// be read is started afresh. It is a pure function of its arguments.
func Decide(m Material, decodeErr error, now time.Time, w Want) Decision {
	switch {
	case decodeErr != nil:
		return Decision{Create, fmt.Sprintf("unusable certificate Secret: %v", decodeErr)}
	case !now.Before(m.CA.Cert.NotAfter):
		return Decision{Create, fmt.Sprintf("the CA expired at %s", m.CA.Cert.NotAfter.UTC().Format(time.RFC3339))}
	case m.Serving.Cert.CheckSignatureFrom(m.CA.Cert) != nil:
		return Decision{Create, "the serving certificate is not signed by the CA"}
	case m.NextCA == nil || !now.Before(m.NextCA.Cert.NotAfter):
		return Decision{StageNext, "no valid next CA in the bundle"}
	case !now.Before(RenewAt(m.Serving, w.Validity)):
		return Decision{Rotate, fmt.Sprintf("the serving certificate expires at %s, less than a third of %s away",
			m.Serving.Cert.NotAfter.UTC().Format(time.RFC3339), w.Validity)}
	case !sameHosts(m.Serving.Hosts(), w.Hosts):
		return Decision{Reissue, fmt.Sprintf("the serving certificate is for %v, wanted %v", m.Serving.Hosts(), w.Hosts)}
	case !bytes.Equal(m.StoredBundle, m.Bundle(now)):
		return Decision{Rebundle, "the stored CA bundle is out of date"}
	}
	return Decision{Action: Keep}
}

// Apply returns the Material after action a at now.
func Apply(m Material, a Action, now time.Time, w Want) (Material, error) {
	newCA := func() (*Authority, error) { return NewAuthority("sluice-webhook-ca", now, w.CAValidity()) }
	var err error
	switch a {
	case Keep, Rebundle:
	case Create:
		m = Material{}
		if m.CA, err = newCA(); err != nil {
			return Material{}, err
		}
		if m.NextCA, err = newCA(); err != nil {
			return Material{}, err
		}
		if m.Serving, err = m.CA.Issue(w.Hosts, now, w.Validity); err != nil {
			return Material{}, err
		}
	case StageNext:
		if m.NextCA, err = newCA(); err != nil {
			return Material{}, err
		}
	case Rotate:
		serving, err := m.NextCA.Issue(w.Hosts, now, w.Validity)
		if err != nil {
			return Material{}, err
		}
		next, err := newCA()
		if err != nil {
			return Material{}, err
		}
		m.Previous, m.CA, m.NextCA, m.Serving = m.CA.Cert, m.NextCA, next, serving
	case Reissue:
		if m.Serving, err = m.CA.Issue(w.Hosts, now, w.Validity); err != nil {
			return Material{}, err
		}
	default:
		return Material{}, fmt.Errorf("unknown certificate action %q", a)
	}
	m.StoredBundle = m.Bundle(now)
	return m, nil
}

func sameHosts(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
