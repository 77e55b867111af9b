package certs

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hosts = []string{"sluice-webhook", "sluice-webhook.sluice-system", "sluice-webhook.sluice-system.svc", "127.0.0.1"}
	want  = Want{Hosts: hosts, Validity: 90 * time.Minute}
)

// created is the Material of a Secret created at t.
func created(t *testing.T, at time.Time) Material {
	t.Helper()
	m, err := Apply(Material{}, Create, at, want)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// roundTrip stores m and reads it back, as the next sync would.
func roundTrip(t *testing.T, m Material, at time.Time) Material {
	t.Helper()
	data, err := m.Encode(at)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestIssueServingCertificate(t *testing.T) {
	ca, err := NewAuthority("test-ca", t0, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ca.Issue(hosts, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hosts, s.Hosts()); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	if got := s.Cert.NotAfter; !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("NotAfter = %s, want %s", got, t0.Add(time.Hour))
	}
	if !s.Cert.NotBefore.Before(t0) {
		t.Errorf("NotBefore %s is not backdated for clock skew", s.Cert.NotBefore)
	}
	for _, h := range hosts {
		if err := Verify(s.CertPEM, ca.CertPEM, h, t0); err != nil {
			t.Errorf("verify for %s: %v", h, err)
		}
	}
	if err := Verify(s.CertPEM, ca.CertPEM, "other.example", t0); err == nil {
		t.Error("verified for a host it was not issued for")
	}
	if err := Verify(s.CertPEM, ca.CertPEM, hosts[0], t0.Add(time.Hour+time.Second)); err == nil {
		t.Error("verified after expiry")
	}
	other, err := NewAuthority("other-ca", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(s.CertPEM, other.CertPEM, hosts[0], t0); err == nil {
		t.Error("verified against a CA that did not sign it")
	}

	// A CA never signs past its own expiry.
	capped, err := ca.Issue(hosts, t0.Add(90*time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := capped.Cert.NotAfter; !got.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %s, want the CA's %s", got, ca.Cert.NotAfter)
	}
	if _, err := ca.Issue(nil, t0, time.Hour); err == nil {
		t.Error("issued a certificate for no host")
	}
}

func TestRenewAtIsWhenAThirdRemains(t *testing.T) {
	m := created(t, t0)
	// 90 minutes of validity: renewed 60 minutes in, with 30 minutes left.
	if got, wantAt := RenewAt(m.Serving, want.Validity), t0.Add(60*time.Minute); !got.Equal(wantAt) {
		t.Errorf("RenewAt = %s, want %s", got, wantAt)
	}
	for now, wantAction := range map[time.Time]Action{
		t0.Add(59*time.Minute + 59*time.Second): Keep,
		t0.Add(60 * time.Minute):                Rotate,
		t0.Add(89 * time.Minute):                Rotate,
	} {
		if got := Decide(m, nil, now, want).Action; got != wantAction {
			t.Errorf("at +%s: %q, want %q", now.Sub(t0), got, wantAction)
		}
	}
}

// A certificate shorter than the wanted validity (capped by its CA's expiry) is renewed when a
// third of the wanted validity remains, not two thirds after issue.
func TestRenewAtOfACappedCertificate(t *testing.T) {
	ca, err := NewAuthority("short-lived", t0.Add(-time.Hour), 130*time.Minute) // expires t0+70m
	if err != nil {
		t.Fatal(err)
	}
	s, err := ca.Issue(hosts, t0, want.Validity)
	if err != nil {
		t.Fatal(err)
	}
	if got, wantAt := RenewAt(s, want.Validity), t0.Add(40*time.Minute); !got.Equal(wantAt) {
		t.Errorf("RenewAt = %s, want %s (30 minutes before the capped expiry)", got, wantAt)
	}
}

func TestDecide(t *testing.T) {
	fresh := created(t, t0)
	other := created(t, t0)
	tests := map[string]struct {
		m         func() Material
		decodeErr error
		now       time.Time
		want      Want
		action    Action
		reason    string
	}{
		"fresh Secret": {m: func() Material { return fresh }, now: t0.Add(time.Minute), want: want, action: Keep},
		"unreadable Secret starts afresh": {
			m: func() Material { return Material{} }, decodeErr: errors.New("tls.crt: no PEM certificate"),
			now: t0, want: want, action: Create, reason: "unusable certificate Secret: tls.crt: no PEM certificate",
		},
		"expired CA starts afresh": {
			m: func() Material { return fresh }, now: t0.Add(want.CAValidity()), want: want, action: Create,
			reason: "the CA expired",
		},
		"serving certificate from another CA starts afresh": {
			m:   func() Material { m := fresh; m.Serving = other.Serving; return m },
			now: t0, want: want, action: Create, reason: "not signed by the CA",
		},
		"no next CA": {
			m:   func() Material { m := fresh; m.NextCA = nil; m.StoredBundle = m.Bundle(t0); return m },
			now: t0, want: want, action: StageNext,
		},
		"expired next CA": {
			m: func() Material {
				m := fresh
				next, err := NewAuthority("old", t0.Add(-time.Hour), time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				m.NextCA = next
				return m
			},
			now: t0, want: want, action: StageNext,
		},
		"a third left": {m: func() Material { return fresh }, now: t0.Add(60 * time.Minute), want: want, action: Rotate, reason: "less than a third of 1h30m0s away"},
		"shorter validity wanted rotates sooner": {
			m: func() Material { return fresh }, now: t0.Add(2 * time.Minute),
			want: Want{Hosts: hosts, Validity: 3 * time.Minute}, action: Rotate,
		},
		"hosts changed": {
			m: func() Material { return fresh }, now: t0.Add(time.Minute),
			want: Want{Hosts: append([]string{"sluice-webhook.other"}, hosts[1:]...), Validity: want.Validity}, action: Reissue,
		},
		"hosts in another order are the same": {
			m: func() Material { return fresh }, now: t0.Add(time.Minute),
			want: Want{Hosts: []string{hosts[3], hosts[2], hosts[1], hosts[0], hosts[0]}, Validity: want.Validity}, action: Keep,
		},
		"stored bundle out of date": {
			m:   func() Material { m := fresh; m.StoredBundle = m.CA.CertPEM; return m },
			now: t0.Add(time.Minute), want: want, action: Rebundle,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Decide(tc.m(), tc.decodeErr, tc.now, tc.want)
			if got.Action != tc.action {
				t.Fatalf("action = %q (%s), want %q", got.Action, got.Reason, tc.action)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to say %q", got.Reason, tc.reason)
			}
			if got.Action == Keep {
				return
			}
			// Applying the decision always leads to a Secret that needs nothing more.
			after, err := Apply(tc.m(), got.Action, tc.now, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			after = roundTrip(t, after, tc.now)
			if d := Decide(after, nil, tc.now, tc.want); d.Action != Keep {
				t.Errorf("after %s the Secret still needs %s (%s)", got.Action, d.Action, d.Reason)
			}
		})
	}
}

// The property the design rests on: at every rotation, the certificate a replica served
// before and the one it serves after are both trusted by the bundle the API server had before
// and by the one it gets after. So neither a replica that re-reads the Secret late nor an API
// server that sees the new bundle late ever fails a call.
func TestRotationKeepsServedCertificatesTrusted(t *testing.T) {
	now := t0
	m := roundTrip(t, created(t, now), now)
	oldBundle := m.Bundle(now)
	rotations := 0
	for step := 0; step < 24*60; step++ { // a day in one-minute steps: 16 rotations of 90 minutes' validity
		now = now.Add(time.Minute)
		d := Decide(m, nil, now, want)
		switch d.Action {
		case Keep:
			for _, h := range hosts {
				if err := Verify(m.Serving.CertPEM, m.Bundle(now), h, now); err != nil {
					t.Fatalf("+%s: the served certificate is not trusted by its own bundle: %v", now.Sub(t0), err)
				}
			}
			continue
		case Rotate:
		default:
			t.Fatalf("+%s: unexpected %s (%s)", now.Sub(t0), d.Action, d.Reason)
		}
		rotations++
		next, err := Apply(m, Rotate, now, want)
		if err != nil {
			t.Fatal(err)
		}
		next = roundTrip(t, next, now)
		newBundle := next.Bundle(now)
		for _, c := range []struct {
			what         string
			serving      []byte
			bundle       []byte
			stillTrusted bool
		}{
			{"new certificate, new bundle", next.Serving.CertPEM, newBundle, true},
			{"new certificate, bundle not yet updated", next.Serving.CertPEM, oldBundle, true},
			{"old certificate (replica not yet updated), new bundle", m.Serving.CertPEM, newBundle, true},
		} {
			if err := Verify(c.serving, c.bundle, hosts[0], now); err != nil {
				t.Errorf("+%s rotation %d, %s: %v", now.Sub(t0), rotations, c.what, err)
			}
		}
		if next.Serving.Cert.CheckSignatureFrom(m.NextCA.Cert) != nil {
			t.Errorf("rotation %d: the new certificate is not signed by the CA staged before", rotations)
		}
		if n := len(mustCerts(t, newBundle)); n != 3 {
			t.Errorf("rotation %d: bundle holds %d CAs, want previous, current and next", rotations, n)
		}
		if got := next.Serving.Cert.NotAfter; !got.Equal(now.Add(want.Validity)) {
			t.Errorf("rotation %d: NotAfter %s, want a full validity to %s", rotations, got, now.Add(want.Validity))
		}
		m, oldBundle = next, newBundle
	}
	if rotations != 24 { // one every 60 minutes
		t.Errorf("%d rotations in a day, want 24", rotations)
	}
}

func TestBundleDropsExpiredPreviousCA(t *testing.T) {
	m := created(t, t0)
	rotated, err := Apply(m, Rotate, t0.Add(time.Hour), want)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	got := mustCerts(t, rotated.Bundle(at))
	wantOrder := []*x509.Certificate{m.CA.Cert, m.NextCA.Cert, rotated.NextCA.Cert}
	if len(got) != 3 {
		t.Fatalf("bundle holds %d certificates, want 3", len(got))
	}
	for i := range got {
		if !got[i].Equal(wantOrder[i]) {
			t.Errorf("bundle[%d] = %s, want previous, current, next", i, got[i].SerialNumber)
		}
	}
	// A previous CA that expired leaves the bundle, and the stored bundle is rewritten.
	expired, err := NewAuthority("expired", t0.Add(-3*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m.Previous = expired.Cert
	m.StoredBundle = m.Bundle(t0.Add(-150 * time.Minute))
	if got := mustCerts(t, m.StoredBundle); len(got) != 3 || !got[0].Equal(expired.Cert) {
		t.Fatalf("bundle while the previous CA was valid holds %d certificates", len(got))
	}
	if got := mustCerts(t, m.Bundle(t0)); len(got) != 2 || !got[0].Equal(m.CA.Cert) {
		t.Errorf("bundle after the previous CA expired holds %d certificates", len(got))
	}
	if d := Decide(m, nil, t0.Add(time.Minute), want); d.Action != Rebundle {
		t.Errorf("Decide = %s (%s), want %s", d.Action, d.Reason, Rebundle)
	}
}

func TestDecodeNamesWhatIsMissing(t *testing.T) {
	m := created(t, t0)
	data, err := m.Encode(t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{KeyTLSCert, KeyTLSKey, KeyCAKey} {
		broken := map[string][]byte{}
		for k, v := range data {
			broken[k] = v
		}
		delete(broken, key)
		if _, err := Decode(broken); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("without %s: error %v, want one naming it", key, err)
		}
	}
	// A key that does not match its certificate is unusable too.
	swapped := map[string][]byte{}
	for k, v := range data {
		swapped[k] = v
	}
	swapped[KeyTLSKey] = data[KeyCAKey]
	if _, err := Decode(swapped); err == nil {
		t.Error("a serving key of another certificate was accepted")
	}
}

func mustCerts(t *testing.T, pemData []byte) []*x509.Certificate {
	t.Helper()
	c, err := parseCerts(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
