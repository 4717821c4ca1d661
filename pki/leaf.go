package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

const (
	leafValidity = 30 * 24 * time.Hour
	// leafRenewBefore is how long before expiry a cached leaf is replaced.
	// Envoy keeps serving the leaf it was last sent over SDS, so a leaf has
	// to be replaced well before it expires, not at the last minute.
	leafRenewBefore = 10 * 24 * time.Hour
)

// Leaf is a server certificate for one host and its private key, both PEM.
// CertPEM holds the leaf alone: agents trust the CA itself, so there is no
// intermediate to send.
//
// Every way Go prints, logs or marshals a Leaf leaves KeyPEM out.
type Leaf struct {
	CertPEM  []byte
	KeyPEM   []byte // PKCS#8
	NotAfter time.Time
}

func (l Leaf) String() string {
	return fmt.Sprintf("Leaf{cert: %d bytes, key: <redacted>, not_after: %s}",
		len(l.CertPEM), l.NotAfter.UTC().Format(time.RFC3339))
}

func (l Leaf) GoString() string { return l.String() }

// Format makes every fmt verb (%d and %x included) print String, so no verb
// can reach KeyPEM.
func (l Leaf) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(l.String())) }

func (l Leaf) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("cert_bytes", len(l.CertPEM)),
		slog.String("key", "<redacted>"),
		slog.Time("not_after", l.NotAfter),
	)
}

func (l Leaf) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		CertPEM  string    `json:"cert_pem"`
		Key      string    `json:"key"`
		NotAfter time.Time `json:"not_after"`
	}{string(l.CertPEM), "<redacted>", l.NotAfter})
}

// Leaf returns a certificate for host signed by the CA, valid from an hour
// before now until now+30 days (never beyond the CA). Leaves are cached per
// host and minted again once less than 10 days remain.
func (c *CA) Leaf(host string, now time.Time) (Leaf, error) {
	return c.LeafFor([]string{host}, now)
}

// LeafFor is Leaf for a certificate naming every one of hosts (DNS names
// or IP literals), as a server reached under several names needs.
func (c *CA) LeafFor(hosts []string, now time.Time) (Leaf, error) {
	if len(hosts) == 0 {
		return Leaf{}, fmt.Errorf("leaf: no host")
	}
	names := make([]string, 0, len(hosts))
	for _, h := range hosts {
		n, err := normalizeHost(h)
		if err != nil {
			return Leaf{}, err
		}
		names = append(names, n)
	}
	key := strings.Join(names, ",")
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leaves[key]; ok && c.fresh(l, now) {
		return l, nil
	}
	// Minting under the lock is cheap (one P-256 key) and means concurrent
	// first requests for a host get one leaf, not several.
	l, err := c.mint(names, now)
	if err != nil {
		return Leaf{}, err
	}
	c.leaves[key] = l
	return l, nil
}

// RenewAt is when Leaf stops handing out l and mints its successor: the
// moment a caller holding l should ask again. Envoy serves the leaf it was
// last sent until it is sent another, so whoever delivers leaves must come
// back by then.
func (c *CA) RenewAt(l Leaf) time.Time {
	if l.NotAfter.Equal(c.cert.NotAfter) {
		return l.NotAfter
	}
	return l.NotAfter.Add(-leafRenewBefore)
}

// fresh reports whether a cached leaf can still be handed out. A leaf
// already cut short by the CA's own expiry cannot be improved by minting
// again, so it is kept until it actually expires.
func (c *CA) fresh(l Leaf, now time.Time) bool {
	if !now.Before(l.NotAfter) {
		return false
	}
	return l.NotAfter.Sub(now) > leafRenewBefore || l.NotAfter.Equal(c.cert.NotAfter)
}

func (c *CA) mint(names []string, now time.Time) (Leaf, error) {
	host := names[0]
	notAfter := now.Add(leafValidity)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	if !now.Before(notAfter) {
		return Leaf{}, fmt.Errorf("leaf for %s: CA expired at %s", host, c.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, fmt.Errorf("leaf for %s: generate key: %w", host, err)
	}
	tmpl := leafTemplate(names, now.Add(-backdate), notAfter)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return Leaf{}, fmt.Errorf("leaf for %s: %w", host, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Leaf{}, fmt.Errorf("leaf for %s: marshal key: %w", host, err)
	}
	return Leaf{
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		NotAfter: notAfter,
	}, nil
}

// leafTemplate puts the names in the SAN; clients match names against the
// SAN only, the CN (the first name) is just for people reading the
// certificate. An IP literal goes into an IP SAN, since a DNS SAN never
// matches an IP.
func leafTemplate(names []string, notBefore, notAfter time.Time) *x509.Certificate {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		// ECDSA keys sign; KeyEncipherment is for RSA key exchange only.
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, name := range names {
		if ip := net.ParseIP(name); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, name)
		}
	}
	return tmpl
}

// normalizeHost lower-cases host (DNS names are case-insensitive, and the
// cache is keyed by name) and rejects what cannot be a certificate name.
func normalizeHost(host string) (string, error) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if net.ParseIP(h) != nil {
		return h, nil
	}
	if h == "" || len(h) > 253 {
		return "", fmt.Errorf("leaf: invalid host %q", host)
	}
	for _, label := range strings.Split(h, ".") {
		if !validLabel(label) {
			return "", fmt.Errorf("leaf: invalid host %q", host)
		}
	}
	return h, nil
}

// validLabel accepts an LDH label (letters, digits, hyphens not at either
// end), plus '_', which real host names carry and Go's verifier accepts.
func validLabel(label string) bool {
	if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for _, r := range label {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
