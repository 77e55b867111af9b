package stackdriver

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
)

const (
	testEmail = "sluice-reader@sluice-test-123.iam.gserviceaccount.com"
	testKeyID = "0123456789abcdef"
	jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// tokenEndpoint is Google's OAuth 2.0 token endpoint as a service-account key's token_uri
// reaches it: it accepts only a well-formed JWT-bearer grant signed by the key (RFC 7523 and
// https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests)
// and hands out numbered tokens that live expiresIn seconds.
type tokenEndpoint struct {
	t         *testing.T
	pub       *rsa.PublicKey
	expiresIn int

	mu     sync.Mutex
	issued []string
}

func (e *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := e.check(r); p != "" {
		e.t.Errorf("token request: %s", p)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, p)
		return
	}
	e.mu.Lock()
	tok := fmt.Sprintf("ya29.token-%d", len(e.issued)+1)
	e.issued = append(e.issued, tok)
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, tok, e.expiresIn)
}

func (e *tokenEndpoint) tokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.issued...)
}

// check returns what is wrong with a token request, or "".
func (e *tokenEndpoint) check(r *http.Request) string {
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		return r.Method + " " + r.URL.Path + ", want POST /token"
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		return "Content-Type " + ct
	}
	if err := r.ParseForm(); err != nil {
		return err.Error()
	}
	if g := r.PostForm.Get("grant_type"); g != jwtBearer {
		return "grant_type " + g
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return fmt.Sprintf("assertion has %d parts, want a JWS header.claims.signature", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "signature: " + err.Error()
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(e.pub, crypto.SHA256, sum[:], sig); err != nil {
		return "assertion not signed RS256 with the service account's key: " + err.Error()
	}
	var header struct{ Alg, Typ, Kid string }
	if err := decodeSegment(parts[0], &header); err != nil {
		return "header: " + err.Error()
	}
	if header.Alg != "RS256" || header.Typ != "JWT" || header.Kid != testKeyID {
		return fmt.Sprintf("header %+v, want RS256, JWT, kid %s", header, testKeyID)
	}
	var claims struct {
		Iss, Scope, Aud string
		Iat, Exp        int64
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return "claims: " + err.Error()
	}
	now := time.Now().Unix()
	switch {
	case claims.Iss != testEmail:
		return "iss " + claims.Iss
	case claims.Scope != "https://www.googleapis.com/auth/monitoring.read":
		return "scope " + claims.Scope + ", want monitoring.read"
	case claims.Aud != "http://"+r.Host+"/token":
		return "aud " + claims.Aud + ", want the token_uri"
	case claims.Iat > now+5 || claims.Iat < now-60:
		return fmt.Sprintf("iat %d is not now (%d)", claims.Iat, now)
	case claims.Exp <= claims.Iat || claims.Exp > claims.Iat+3600:
		return fmt.Sprintf("exp %d must be after iat %d and at most an hour later", claims.Exp, claims.Iat)
	}
	return ""
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// serviceAccountKey is a key file as the Google Cloud console downloads it, pointed at tokenURI.
func serviceAccountKey(t *testing.T, priv *rsa.PrivateKey, tokenURI string) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":                        "service_account",
		"project_id":                  testProject,
		"private_key_id":              testKeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                testEmail,
		"client_id":                   "113456789012345678901",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// promQL is Cloud Monitoring's PromQL endpoint: it answers only a query for testProject that
// carries the newest token the token endpoint issued.
func promQL(t *testing.T, tokens *tokenEndpoint) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		issued := tokens.tokens()
		want := "/v1/projects/" + testProject + "/location/global/prometheus/api/v1/query"
		switch {
		case r.Method != http.MethodGet || r.URL.Path != want:
			t.Errorf("query %s %s, want GET %s", r.Method, r.URL.Path, want)
		case r.URL.Query().Get("query") != testQuery:
			t.Errorf("query %q", r.URL.Query().Get("query"))
		case len(issued) == 0 || r.Header.Get("Authorization") != "Bearer "+issued[len(issued)-1]:
			t.Errorf("Authorization %q, want Bearer and the newest of %q", r.Header.Get("Authorization"), issued)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(bodyUnauthenticated))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(bodyOneSample))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestServiceAccountKey: a Secret with Flagger's keys (project, serviceAccountKey) reaches Cloud
// Monitoring with an access token obtained by the JWT-bearer grant; the token is reused while
// it is valid and replaced once it has expired (counted at the token endpoint).
func TestServiceAccountKey(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		expiresIn  int
		wantTokens int
	}{
		// A token that lives an hour serves every query.
		"valid token reused": {expiresIn: 3600, wantTokens: 1},
		// Google's library treats a token as expired 10 s before its expiry: one that lives 1 s
		// has expired at the next query, which must fetch a new one.
		"expired token refreshed": {expiresIn: 1, wantTokens: 3},
	} {
		t.Run(name, func(t *testing.T) {
			tokens := &tokenEndpoint{t: t, pub: &priv.PublicKey, expiresIn: tc.expiresIn}
			tokenSrv := httptest.NewServer(tokens)
			t.Cleanup(tokenSrv.Close)
			prom := promQL(t, tokens)

			p, err := Backend.New(t.Context(), metrics.Source{
				Address: prom.URL, Namespace: "app", Timeout: 5 * time.Second,
				Secret: map[string][]byte{
					"project":           []byte(testProject),
					"serviceAccountKey": serviceAccountKey(t, priv, tokenSrv.URL+"/token"),
				},
			})
			if err != nil {
				t.Fatalf("Backend.New: %v", err)
			}
			for i := range 3 {
				v, err := p.Query(t.Context(), testQuery)
				if err != nil || v != 99.8125 {
					t.Fatalf("query %d = %v, %v; want 99.8125", i+1, v, err)
				}
			}
			if got := tokens.tokens(); len(got) != tc.wantTokens {
				t.Errorf("token requests for 3 queries = %d (%q), want %d", len(got), got, tc.wantTokens)
			}
		})
	}
}

// A key the token endpoint refuses is a failed query that says so, with no query sent; the
// next query asks again.
func TestServiceAccountKeyRefused(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var asked int
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`))
	}))
	t.Cleanup(tokenSrv.Close)
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("query sent without a token: %s", r.URL)
	}))
	t.Cleanup(prom.Close)
	ts, err := ServiceAccountTokens(serviceAccountKey(t, priv, tokenSrv.URL+"/token"))
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, prom.URL, 5*time.Second, ts)
	for range 2 {
		_, err := p.Query(t.Context(), testQuery)
		if err == nil || !strings.Contains(err.Error(), "Invalid JWT Signature") || !strings.Contains(err.Error(), testEmail) {
			t.Errorf("error = %v, want the endpoint's refusal and the account", err)
		}
	}
	if asked != 2 {
		t.Errorf("token endpoint asked %d times, want once per query (a refusal is not cached)", asked)
	}
}

// The token request is bound to the query's deadline.
func TestServiceAccountKeyTimeout(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(tokenSrv.Close)
	t.Cleanup(func() { close(release) })
	ts, err := ServiceAccountTokens(serviceAccountKey(t, priv, tokenSrv.URL+"/token"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = newProvider(t, "http://127.0.0.1:1", 200*time.Millisecond, ts).Query(t.Context(), testQuery)
	if err == nil || !strings.Contains(err.Error(), "get access token") {
		t.Errorf("error = %v, want the token request's failure", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Query took %s, want about the 200ms timeout", d)
	}
}

func TestServiceAccountKeyValidated(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := serviceAccountKey(t, priv, "https://oauth2.googleapis.com/token")
	edit := func(f func(m map[string]string)) []byte {
		var m map[string]string
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	for name, tc := range map[string]struct {
		key  []byte
		want string
	}{
		"valid":    {key: good},
		"not JSON": {key: []byte("project=x"), want: "serviceAccountKey"},
		// Configurations that make the library read files or run commands are refused.
		"external account": {key: []byte(`{"type":"external_account","credential_source":{"file":"/var/run/secrets/kubernetes.io/serviceaccount/token"}}`),
			want: `'type' field is "external_account" (expected "service_account")`},
		"user credentials":   {key: edit(func(m map[string]string) { m["type"] = "authorized_user" }), want: "expected \"service_account\""},
		"no email":           {key: edit(func(m map[string]string) { delete(m, "client_email") }), want: "client_email"},
		"key not PEM":        {key: edit(func(m map[string]string) { m["private_key"] = "hunter2" }), want: "private_key: not a PEM-encoded key"},
		"token_uri userinfo": {key: edit(func(m map[string]string) { m["token_uri"] = "https://u:hunter2@oauth2.googleapis.com/token" }), want: "token_uri"},
		"token_uri scheme":   {key: edit(func(m map[string]string) { m["token_uri"] = "file:///etc/passwd" }), want: "token_uri"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ServiceAccountTokens(tc.key)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("error %v repeats a secret", err)
			}
		})
	}
}

// Without serviceAccountKey or token, or without project, the backend refuses to build and
// says which keys it reads.
func TestBackendNeedsCredentials(t *testing.T) {
	for name, secret := range map[string]map[string][]byte{
		"nothing":         nil,
		"no project":      {"serviceAccountKey": []byte("{}")},
		"project, no key": {"project": []byte("p")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Backend.New(context.Background(), metrics.Source{Secret: secret, Namespace: "app"})
			if err == nil || !strings.Contains(err.Error(), "set project and token") || !strings.Contains(err.Error(), "serviceAccountKey") {
				t.Errorf("error = %v", err)
			}
		})
	}
}
