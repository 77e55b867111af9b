package stackdriver

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"

	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

// Scope is the OAuth 2.0 scope Sluice asks for: reading Cloud Monitoring data, nothing else.
const Scope = "https://www.googleapis.com/auth/monitoring.read"

// ServiceAccountTokens returns a TokenSource that trades a service account's JSON key (the
// file the Google Cloud console downloads, Flagger's Secret key `serviceAccountKey`) for
// access tokens with Google's own auth library (golang.org/x/oauth2/google): a JWT signed
// RS256 with the key, POSTed to the key's token_uri as a JWT-bearer grant
// (RFC 7523, grant_type urn:ietf:params:oauth:grant-type:jwt-bearer) with scope Scope. A token
// is reused until shortly before it expires (oauth2.Token.Valid: 10 s early), then replaced;
// concurrent queries share one exchange.
//
// Only keys of type service_account are accepted. The library's general loaders also take
// "external_account" and other configurations that read files or run commands on the host
// where they are loaded, and a MetricTemplate's Secret is written by whoever may write Secrets
// in its namespace, not by the controller's operator.
//
// The token request goes through the same guarded transport as the queries (no redirects,
// capped bodies) and is bound to the query's deadline.
func ServiceAccountTokens(key []byte) (TokenSource, error) {
	cfg, err := google.JWTConfigFromJSON(key, Scope)
	if err != nil {
		// Only the type is quoted by the library; a JSON syntax error quotes no content.
		return nil, fmt.Errorf("serviceAccountKey: %w", err)
	}
	if cfg.Email == "" {
		return nil, errors.New("serviceAccountKey: no client_email")
	}
	if err := checkPrivateKey(cfg.PrivateKey); err != nil {
		return nil, fmt.Errorf("serviceAccountKey: private_key: %w", err)
	}
	if _, err := httpapi.ParseAddress(cfg.TokenURL); err != nil {
		return nil, fmt.Errorf("serviceAccountKey: token_uri: %w", err)
	}
	s := &serviceAccount{cfg: cfg, transport: httpapi.NewTransport(false)}
	return s.token, nil
}

// serviceAccount caches the current access token of one key.
type serviceAccount struct {
	cfg       *jwt.Config
	transport http.RoundTripper

	mu  sync.Mutex
	tok *oauth2.Token
}

func (s *serviceAccount) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() {
		return s.tok.AccessToken, nil
	}
	// The library sends the grant with the client it finds in the context, without the
	// context itself: the transport binds each request to ctx so the query's deadline holds.
	client := httpapi.WithTransport(boundTo{ctx: ctx, next: s.transport})
	tok, err := s.cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, client)).Token()
	if err != nil {
		return "", fmt.Errorf("service account %s: %w", s.cfg.Email, err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("service account %s: the token endpoint returned no access_token", s.cfg.Email)
	}
	s.tok = tok
	return tok.AccessToken, nil
}

// boundTo sends every request under ctx.
type boundTo struct {
	ctx  context.Context
	next http.RoundTripper
}

func (b boundTo) RoundTrip(req *http.Request) (*http.Response, error) {
	return b.next.RoundTrip(req.WithContext(b.ctx))
}

// checkPrivateKey tells at once (when the provider is built, not at the first query) whether
// the key's private_key is an RSA key in PEM, as Google issues them (PKCS #8, or PKCS #1).
func checkPrivateKey(p []byte) error {
	block, _ := pem.Decode(p)
	if block == nil {
		return errors.New("not a PEM-encoded key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return fmt.Errorf("a %T, want an RSA key", k)
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		return errors.New("not an RSA private key (PKCS #8 or PKCS #1)")
	}
	return nil
}
