package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Usage selects the extended key usages of a leaf certificate.
type Usage int

const (
	ServerAuth Usage = 1 << iota
	ClientAuth
)

const (
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how long before expiry a leaf is replaced, so a node
	// that is down for a while still comes back with valid certificates.
	renewBefore = 90 * 24 * time.Hour
	// KeyEncipherment is meaningless for ECDSA but some clients still look
	// for it on serving certificates.
	leafKeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
)

// LeafSpec describes a leaf certificate.
type LeafSpec struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usage        Usage // ServerAuth, ClientAuth or both
}

func (u Usage) extKeyUsages() []x509.ExtKeyUsage {
	var eku []x509.ExtKeyUsage
	if u&ServerAuth != 0 {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	if u&ClientAuth != 0 {
		eku = append(eku, x509.ExtKeyUsageClientAuth)
	}
	return eku
}

func (s LeafSpec) validate() error {
	if s.CommonName == "" {
		return errors.New("certificate spec has an empty common name")
	}
	if s.Usage == 0 || s.Usage&^(ServerAuth|ClientAuth) != 0 {
		return fmt.Errorf("certificate spec for %s has usage %d, want ServerAuth, ClientAuth or both", s.CommonName, s.Usage)
	}
	for _, name := range s.DNSNames {
		if name == "" {
			return fmt.Errorf("certificate spec for %s has an empty DNS name", s.CommonName)
		}
	}
	for i, ip := range s.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return fmt.Errorf("certificate spec for %s has an invalid IP address at index %d", s.CommonName, i)
		}
	}
	return nil
}

// EnsureLeaf makes sure certFile/keyFile hold a certificate for spec
// signed by ca. An existing pair is kept unless it is missing or
// unreadable, not signed by this CA, expiring within 90 days, or differs
// from spec in subject, SANs or key usage; then a new key and certificate
// are written and issued is true.
func (ca *CA) EnsureLeaf(certFile, keyFile string, spec LeafSpec) (issued bool, err error) {
	if err := spec.validate(); err != nil {
		return false, fmt.Errorf("ensure certificate %s: %w", certFile, err)
	}
	now := time.Now()
	if ca.staleReason(certFile, keyFile, spec, now) == "" {
		return false, nil
	}
	certPEM, keyPEM, err := ca.issue(spec, now.Add(-clockSkew), now.Add(leafValidity))
	if err != nil {
		return false, fmt.Errorf("ensure certificate %s: %w", certFile, err)
	}
	if err := writePair(certFile, keyFile, certPEM, keyPEM); err != nil {
		return false, fmt.Errorf("ensure certificate %s: %w", certFile, err)
	}
	return true, nil
}

// staleReason says why the pair on disk cannot be kept, or "" when it can.
// Any read or parse problem counts as a reason: the files are ours to
// regenerate.
func (ca *CA) staleReason(certFile, keyFile string, spec LeafSpec, now time.Time) string {
	certs, _, err := readCerts(certFile)
	if err != nil {
		return err.Error()
	}
	cert := certs[0]
	key, err := readKey(keyFile)
	if err != nil {
		return err.Error()
	}
	switch {
	case !samePublicKey(key.Public(), cert.PublicKey):
		return "private key does not match certificate"
	case cert.CheckSignatureFrom(ca.Cert) != nil:
		return "not signed by this CA"
	case cert.IsCA:
		return "is a CA certificate"
	case now.Add(renewBefore).After(cert.NotAfter):
		return "expires within 90 days"
	case cert.Subject.CommonName != spec.CommonName:
		return "common name differs"
	case !sameSet(cert.Subject.Organization, spec.Organization, identity):
		return "organization differs"
	case !sameSet(cert.DNSNames, spec.DNSNames, strings.ToLower):
		return "DNS names differ"
	case !sameSet(ipStrings(cert.IPAddresses), ipStrings(spec.IPs), identity):
		return "IP addresses differ"
	case len(cert.URIs) != 0 || len(cert.EmailAddresses) != 0:
		return "has unexpected SANs"
	case cert.KeyUsage != leafKeyUsage:
		return "key usage differs"
	case len(cert.UnknownExtKeyUsage) != 0 || !sameSet(cert.ExtKeyUsage, spec.Usage.extKeyUsages(), identity):
		return "extended key usage differs"
	}
	return ""
}

// Issue returns a fresh certificate and key PEM for spec without writing
// files, for certificates handed to another node.
func (ca *CA) Issue(spec LeafSpec) (certPEM, keyPEM []byte, err error) {
	if err := spec.validate(); err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	now := time.Now()
	return ca.issue(spec, now.Add(-clockSkew), now.Add(leafValidity))
}

func (ca *CA) issue(spec LeafSpec, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %s: %w", spec.CommonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %s: %w", spec.CommonName, err)
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %s: %w", spec.CommonName, err)
	}
	// A leaf outliving its CA would only fail verification later.
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   spec.CommonName,
			Organization: slices.Clone(spec.Organization),
		},
		DNSNames:              dedup(spec.DNSNames, strings.ToLower),
		IPAddresses:           dedup(spec.IPs, net.IP.String),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              leafKeyUsage,
		ExtKeyUsage:           spec.Usage.extKeyUsages(),
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
		// AuthorityKeyId is taken from ca.Cert.SubjectKeyId by the library.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate for %s: %w", spec.CommonName, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %s: %w", spec.CommonName, err)
	}
	return encodeCert(der), keyPEM, nil
}

func identity[T any](v T) T { return v }

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		// String folds the 4- and 16-byte forms of an IPv4 address.
		out[i] = ip.String()
	}
	return out
}

// sameSet compares a and b as sets of key(v), ignoring order and
// duplicates.
func sameSet[T any, K comparable](a, b []T, key func(T) K) bool {
	as := make(map[K]struct{}, len(a))
	for _, v := range a {
		as[key(v)] = struct{}{}
	}
	bs := make(map[K]struct{}, len(b))
	for _, v := range b {
		k := key(v)
		if _, ok := as[k]; !ok {
			return false
		}
		bs[k] = struct{}{}
	}
	return len(as) == len(bs)
}

// dedup drops repeated entries (by key), keeping the first occurrence and
// the order, so a spec listing a name twice does not yield duplicate SANs.
func dedup[T any, K comparable](in []T, key func(T) K) []T {
	if len(in) == 0 {
		return nil
	}
	seen := make(map[K]struct{}, len(in))
	out := make([]T, 0, len(in))
	for _, v := range in {
		k := key(v)
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, v)
	}
	return out
}
