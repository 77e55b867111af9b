// Package certs keeps the admission webhook's serving certificate: a CA and a serving
// certificate signed by it, for the names the API server dials, and the CA bundle the webhook
// configuration must carry.
//
// Self-managed mode (Manager): the certificates live in one Secret in Sluice's namespace, and
// every replica runs the same loop: read the Secret (create it when missing), ask Decide what
// it needs, write it with the read's resourceVersion as precondition (a replica that loses a
// race re-reads the winner's Secret, so all replicas end on one CA), patch the bundle into
// each webhook's caBundle, and serve the Secret's certificate through tls.Config's
// GetCertificate, so a new one is served without a restart.
//
// Rotation never leaves a replica serving a certificate the API server does not trust. The
// Secret holds three CAs, all in the bundle:
//
//	           rotation k-1           rotation k             rotation k+1
//	previous   C(k-2)                 C(k-1)                 C(k)
//	current    C(k-1) signs S(k-1)    C(k)   signs S(k)      C(k+1) signs S(k+1)
//	next       C(k)                   C(k+1)                 C(k+2)
//
// A CA enters the bundle as "next" a whole rotation period before it signs anything, so the
// new serving certificate is trusted the moment any replica serves it, however late the API
// server sees a bundle change; and the CA that signed the old certificate stays in the bundle
// ("previous") for a whole rotation period after, so a replica that has not re-read the Secret
// yet is still trusted. A stale bundle (one rotation behind) also trusts both certificates,
// so replicas that inject in the wrong order are harmless. Serving certificates live
// Want.Validity and are rotated when a third of that remains; CAs live twice as long so the
// next CA can still sign a full-length certificate when its turn comes.
//
// Files mode (cert-manager): the webhook server's own certificate watcher serves tls.crt and
// tls.key from a directory, reloaded on change; this package is not involved.
package certs
